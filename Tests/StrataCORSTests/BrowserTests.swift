import Foundation
import Strata
import StrataCORS
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import CORSExample

/// Headless Chromium loads the example page from one origin and calls the API on another; the
/// page writes what the browser allowed and blocked.
@Suite(.serialized) struct BrowserTests {
    struct Outcome {
        var results: [String: [String: Any]]

        func ok(_ check: String) -> Bool { self.results[check]?["ok"] as? Bool == true }
        func value(_ check: String) -> [String: Any]? { self.results[check]?["value"] as? [String: Any] }
    }

    /// Runs the page at `pageURL` (with `?api=` and `?auto=1` added) in Chromium.
    func runPage(_ pageURL: String, api: String) async throws -> Outcome {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let url = "\(pageURL)/?auto=1&api=\(api)"
        let output = try await ExternalProcess.run(
            try ExternalProcess.chromium(),
            [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
                "--virtual-time-budget=15000", "--dump-dom", url,
            ],
            timeout: .seconds(90)
        )
        guard let marker = output.stdout.range(of: "RESULTS ") else {
            throw ExternalProcess.Failure(
                description: "no results in the page: \(output.stdout.suffix(500)) \(output.stderr.suffix(500))")
        }
        let json = output.stdout[marker.upperBound...].prefix { $0 != "<" }
        let unescaped = json.replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
        let object = try JSONSerialization.jsonObject(with: Data(unescaped.utf8)) as? [String: [String: Any]]
        return Outcome(results: try #require(object))
    }

    @Test func theBrowserAllowsAndBlocksWhatTheHeadersSay() async throws {
        let page = try buildResponder(configuration: .init(allowedOrigins: ["https://unused.example"]))
        try await withLiveServer(responder: page) { pagePort in
            var configuration = CORSConfiguration(allowedOrigins: ["http://127.0.0.1:\(pagePort)"])
            configuration.allowsCredentials = true
            configuration.exposedHeaders = ["X-Request-Count"]
            let api = try buildResponder(configuration: configuration)
            try await withLiveServer(responder: api) { apiPort in
                let apiOrigin = "http://127.0.0.1:\(apiPort)"

                let allowed = try await self.runPage("http://127.0.0.1:\(pagePort)", api: apiOrigin)
                #expect(allowed.ok("simpleGet"), "\(allowed.results)")
                #expect(allowed.value("simpleGet")?["status"] as? Int == 200)
                #expect(allowed.ok("credentialedGet"), "\(allowed.results)")
                #expect(allowed.ok("preflightedPut"), "\(allowed.results)")
                let stored = (allowed.value("preflightedPut")?["body"] as? [String: Any])?["message"] as? String
                #expect(stored == "stored by a cross-origin PUT")
                #expect(allowed.value("exposedHeader")?["count"] as? String != nil, "\(allowed.results)")
                #expect(allowed.value("exposedHeader")?["secret"] is NSNull, "\(allowed.results)")

                // Same page, served from an origin the API does not allow: everything is blocked.
                let blocked = try await self.runPage("http://localhost:\(pagePort)", api: apiOrigin)
                for check in ["simpleGet", "credentialedGet", "preflightedPut", "exposedHeader"] {
                    #expect(!blocked.ok(check), "\(check) should be blocked: \(blocked.results)")
                }
            }
        }
    }

    @Test func withoutCredentialsOrExposureTheBrowserRefusesThose() async throws {
        let page = try buildResponder(configuration: .init(allowedOrigins: ["https://unused.example"]))
        try await withLiveServer(responder: page) { pagePort in
            let api = try buildResponder(configuration: .init(allowedOrigins: ["http://127.0.0.1:\(pagePort)"]))
            try await withLiveServer(responder: api) { apiPort in
                let outcome = try await self.runPage("http://127.0.0.1:\(pagePort)", api: "http://127.0.0.1:\(apiPort)")
                #expect(outcome.ok("simpleGet"), "\(outcome.results)")
                #expect(!outcome.ok("credentialedGet"), "\(outcome.results)")
                #expect(outcome.ok("preflightedPut"), "\(outcome.results)")
                #expect(outcome.value("exposedHeader")?["count"] is NSNull, "\(outcome.results)")
            }
        }
    }
}
