import Foundation
import Strata
import StrataCORS
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import CORSExample

/// The CORS example over real sockets with curl.
@Suite struct CORSSocketTests {
    func headers(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
        for line in head.components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    @Test func curlSeesPreflightAndActualResponses() async throws {
        var configuration = CORSConfiguration(allowedOrigins: ["https://app.example.com"])
        configuration.allowsCredentials = true
        configuration.exposedHeaders = ["X-Request-Count"]
        configuration.maxAge = 300
        try await withLiveServer(responder: try buildResponder(configuration: configuration)) { port in
            let curl = try ExternalProcess.curl()
            let preflight = try await ExternalProcess.run(
                curl,
                [
                    "-sS", "-i", "-X", "OPTIONS", "http://127.0.0.1:\(port)/api/data",
                    "-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: PUT",
                    "-H", "Access-Control-Request-Headers: content-type,x-custom",
                ])
            #expect(preflight.stdout.hasPrefix("HTTP/1.1 204"), "\(preflight.stdout)")
            let granted = self.headers(preflight.stdout)
            #expect(granted["access-control-allow-origin"] == "https://app.example.com")
            #expect(granted["access-control-allow-credentials"] == "true")
            #expect(granted["access-control-allow-methods"] == "PUT")
            #expect(granted["access-control-allow-headers"] == "content-type,x-custom")
            #expect(granted["access-control-max-age"] == "300")
            #expect(granted["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")

            let actual = try await ExternalProcess.run(
                curl, ["-sS", "-i", "http://127.0.0.1:\(port)/api/data", "-H", "Origin: https://app.example.com"])
            let fields = self.headers(actual.stdout)
            #expect(fields["access-control-allow-origin"] == "https://app.example.com")
            #expect(fields["access-control-expose-headers"] == "x-request-count")
            #expect(fields["vary"] == "Origin")

            let refused = try await ExternalProcess.run(
                curl,
                [
                    "-sS", "-i", "-X", "OPTIONS", "http://127.0.0.1:\(port)/api/data",
                    "-H", "Origin: https://evil.example", "-H", "Access-Control-Request-Method: PUT",
                ])
            #expect(refused.stdout.hasPrefix("HTTP/1.1 403"))
            #expect(self.headers(refused.stdout)["access-control-allow-origin"] == nil)

            let missing = try await ExternalProcess.run(
                curl, ["-sS", "-i", "http://127.0.0.1:\(port)/missing", "-H", "Origin: https://app.example.com"])
            #expect(missing.stdout.hasPrefix("HTTP/1.1 404"))
            #expect(self.headers(missing.stdout)["access-control-allow-origin"] == "https://app.example.com")
        }
    }
}
