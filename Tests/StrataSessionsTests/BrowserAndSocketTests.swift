import Foundation
import HTTPTypes
import Strata
import StrataServer
import StrataSessions
import StrataTestSupport
import StrataTesting
import Testing

@testable import SessionsExample

/// The example over real sockets: curl, and headless Chromium in two profiles.
@Suite(.serialized) struct BrowserAndSocketTests {
    /// The example's routes, plus `/driver?script=NAME`: a page whose script drives the
    /// example with `fetch` (same origin, so the browser's own cookie jar is used) and writes
    /// what it saw into the page for `--dump-dom`.
    static func responder() throws -> some HTTPResponder<BasicContext> {
        let example = try buildResponder(store: MemorySessionStore(), logger: quietLogger)
        return ClosureResponder<BasicContext> { request, context in
            guard request.path.hasPrefix("/driver") else {
                return try await example.respond(to: request, context: context)
            }
            let script = request.query?.contains("script=check") == true ? Self.checkScript : Self.loginScript
            return ServerResponse(
                status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"],
                body: .init(
                    string:
                        "<!doctype html><html><body><pre id=\"out\">pending</pre><script>\(script)</script></body></html>"
                ))
        }
    }

    static let loginScript = """
        (async () => {
          const out = {};
          try {
            const login = await fetch('/login', {method: 'POST', body: new URLSearchParams({name: 'ada'})});
            out.redirectedTo = new URL(login.url).pathname;
            const first = await login.text();
            out.flashOnFirstPage = first.includes('Welcome, ada!');
            out.flashOnSecondPage = (await (await fetch('/')).text()).includes('Welcome, ada!');
            out.counts = [];
            for (let i = 0; i < 3; i++) {
              out.counts.push((await (await fetch('/api/count', {method: 'POST'})).json()).count);
            }
            out.session = await (await fetch('/api/session')).json();
            out.documentCookie = document.cookie;
            if (location.search.includes('everywhere')) {
              await fetch('/logout-everywhere', {method: 'POST'});
              out.afterLogoutEverywhere = await (await fetch('/api/session')).json();
            }
          } catch (error) { out.error = String(error); }
          document.getElementById('out').textContent = 'RESULTS ' + JSON.stringify(out);
        })();
        """

    static let checkScript = """
        (async () => {
          const out = {};
          try { out.session = await (await fetch('/api/session')).json(); } catch (error) { out.error = String(error); }
          document.getElementById('out').textContent = 'RESULTS ' + JSON.stringify(out);
        })();
        """

    /// Runs a driver page in Chromium with the profile in `profile`; what the page wrote.
    static func run(_ url: String, profile: URL) async throws -> [String: Any] {
        let output = try await ExternalProcess.run(
            try ExternalProcess.chromium(),
            [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
                "--virtual-time-budget=15000", "--dump-dom", url,
            ],
            timeout: .seconds(90))
        guard let marker = output.stdout.range(of: "RESULTS ") else {
            throw ExternalProcess.Failure(
                description: "no results: \(output.stdout.suffix(400)) \(output.stderr.suffix(400))")
        }
        let json = output.stdout[marker.upperBound...].prefix { $0 != "<" }
            .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func aRealBrowserLogsInSeesTheFlashOnceAndLogsOutEverywhere() async throws {
        try await withLiveServer(responder: try Self.responder()) { port in
            // localhost: a secure context, where the Secure __Host- cookie is kept over http.
            let base = "http://localhost:\(port)"
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("strata-sessions-\(UUID())")
            defer { try? FileManager.default.removeItem(at: root) }
            let second = root.appendingPathComponent("second")
            let first = root.appendingPathComponent("first")

            let other = try await Self.run("\(base)/driver?script=login", profile: second)
            #expect((other["session"] as? [String: Any])?["name"] as? String == "ada", "\(other)")
            let stillIn = try await Self.run("\(base)/driver?script=check", profile: second)
            #expect(
                (stillIn["session"] as? [String: Any])?["name"] as? String == "ada",
                "the second profile keeps its session between runs: \(stillIn)")

            let page = try await Self.run("\(base)/driver?script=login&everywhere", profile: first)
            #expect(page["error"] == nil, "\(page)")
            #expect(page["redirectedTo"] as? String == "/")
            #expect(page["flashOnFirstPage"] as? Bool == true, "\(page)")
            #expect(page["flashOnSecondPage"] as? Bool == false, "the flash shows once")
            #expect(page["counts"] as? [Int] == [1, 2, 3])
            #expect(page["documentCookie"] as? String == "", "HttpOnly: invisible to scripts")
            #expect((page["afterLogoutEverywhere"] as? [String: Any])?["name"] is NSNull)

            let ended = try await Self.run("\(base)/driver?script=check", profile: second)
            #expect((ended["session"] as? [String: Any])?["name"] is NSNull, "logged out everywhere: \(ended)")
        }
    }

    @Test func curlLogsInAndTheCookieCarriesTheSession() async throws {
        try await withLiveServer(responder: try Self.responder()) { port in
            let curl = try ExternalProcess.curl()
            let login = try await ExternalProcess.run(
                curl, ["-sS", "-i", "-X", "POST", "--data", "name=bo", "http://127.0.0.1:\(port)/login"])
            #expect(login.stdout.hasPrefix("HTTP/1.1 303"), "\(login.stdout)")
            let setCookie = try #require(
                login.stdout.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
            let cookie = try #require(Cookie(setCookieValue: String(setCookie.dropFirst("set-cookie:".count))))
            let session = try await ExternalProcess.run(
                curl,
                ["-sS", "-H", "Cookie: \(cookie.name)=\(cookie.value)", "http://127.0.0.1:\(port)/api/session"])
            #expect(session.stdout == "{\"name\": \"bo\", \"count\": 0, \"flash\": \"Welcome, bo!\"}")
            let tampered = String(cookie.value.dropLast()) + (cookie.value.hasSuffix("A") ? "E" : "A")
            let refused = try await ExternalProcess.run(
                curl,
                [
                    "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Cookie: \(cookie.name)=\(tampered)",
                    "http://127.0.0.1:\(port)/api/session",
                ])
            #expect(refused.stdout == "200", "a tampered cookie is no session, not an error")
        }
    }
}
