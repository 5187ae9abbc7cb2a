import Foundation
import Logging
import Strata
import StrataRateLimit
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import RateLimitExample

/// The example's page in headless Chromium: `/#burst` fires 20 requests at `/api` and shows
/// what came back. The store's clock stands still, so exactly the burst of 10 passes.
@Suite struct BrowserTests {
    @Test func thePageShowsTheFieldsAndTheRefusalsLive() async throws {
        var logger = Logger(label: "strata.test.ratelimit.browser")
        logger.logLevel = .critical
        let store = MemoryRateLimitStore(clock: ManualClock())
        let responder = try buildResponder(store: store, logger: logger)
        try await withLiveServer(responder: responder, logger: logger) { port in
            let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strata-rl-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: profile) }
            let output = try await ExternalProcess.run(
                try ExternalProcess.chromium(),
                [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--user-data-dir=\(profile.path)", "--virtual-time-budget=15000", "--dump-dom",
                    "http://127.0.0.1:\(port)/#burst",
                ],
                timeout: .seconds(90))
            let dom = output.stdout
            func text(of id: String) -> String? {
                guard let start = dom.range(of: "id=\"\(id)\">") else { return nil }
                return String(dom[start.upperBound...].prefix { $0 != "<" })
            }
            #expect(text(of: "allowed") == "10", "\(dom.suffix(600))")
            #expect(text(of: "refused") == "10")
            #expect(
                text(of: "policy")?.replacingOccurrences(of: "&quot;", with: "\"")
                    == "\"burst\";q=10;w=2, \"minute\";q=100;w=60")
            #expect(dom.contains("<td>429</td>"))
            #expect(dom.contains("\"burst\";r=0;t="))
        }
    }
}
