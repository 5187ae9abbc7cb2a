import CacheExample
import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// `CacheExample`: its routes over a real socket, and its page in headless Chromium.
@Suite struct CacheExampleTests {
    @Test func theRoutesShowWhatTheCacheDid() async throws {
        let example = try await ExampleProcess("CacheExample")
        defer { example.stop() }
        func get(_ path: String, _ arguments: [String] = []) async throws -> (head: [String], body: String) {
            try await curl(example.port, path, arguments)
        }
        _ = try await get("/fresh")
        let fresh = try await get("/fresh")
        #expect(fresh.head.values("origin-hits") == ["1"])
        #expect(fresh.head.values("cache-status").first?.hasPrefix("Strata; hit") == true)
        _ = try await get("/no-store")
        #expect(try await get("/no-store").head.values("origin-hits") == ["2"])
        _ = try await get("/etag")
        let validated = try await get("/etag")
        #expect(validated.body == "validated on every use\n")
        #expect(validated.head.values("cache-status").first?.contains("fwd-status=304") == true)
        _ = try await get("/vary", ["-H", "Accept-Language: fr"])
        #expect(try await get("/vary", ["-H", "Accept-Language: de"]).body == "language: de\n")
        #expect(try await get("/vary", ["-H", "Accept-Language: fr"]).head.values("origin-hits") == ["1"])
        _ = try await get("/tagged")
        #expect(try await get("/tagged", ["-X", "PURGE"]).body == "purged\n")
        #expect(try await get("/tagged").head.values("origin-hits") == ["2"])
    }

    @Test func thePageShowsCacheStatusInABrowser() async throws {
        try await withLiveServer(responder: try buildApplication(logger: quietLogger), logger: quietLogger) { port in
            let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strata-cache-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: profile) }
            let output = try await ExternalProcess.run(
                try ExternalProcess.chromium(),
                [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--user-data-dir=\(profile.path)", "--virtual-time-budget=15000", "--dump-dom",
                    "http://127.0.0.1:\(port)/",
                ],
                timeout: .seconds(90))
            let dom = output.stdout
            #expect(dom.contains("data-done=\"yes\""), "\(dom.suffix(800))")
            // The browser's own cache is kept out: the second request of /fresh is the cache's hit.
            #expect(dom.contains("<code>Strata; hit; ttl="))
            #expect(dom.contains("<code>Strata; fwd=uri-miss; fwd-status=200; stored</code>"))
            #expect(dom.contains("<td><code>/slow</code></td>"))
        }
    }
}
