import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// Limits, timeouts and malformed or ambiguous requests: each gets a defined answer and a close.
@Suite struct BadInputTests {
    /// Sends `request` alone and returns the status the server answered before closing.
    func statusAndClose(_ request: String, port: Int) async throws -> (Int?, String) {
        let text = try await RawHTTPClient.exchange(request, port: port)
        return (parseResponses(text).first?.status, text)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "CL and TE"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "differing CLs"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", "CL list"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "negative CL"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", "signed CL"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", "TE not chunked"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "chunked not last"),
        (
            "POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            "bad chunk size"
        ),
        (
            "POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
            "bad chunk end"
        ),
        ("GET / HTTP/1.1\r\n\r\n", "no Host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two Hosts"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad Host"),
        ("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", "bad Host port"),
        ("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", "space in field name"),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "field without colon"),
        ("GET / HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n", "obs-fold"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", "space before colon"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", "bare CR in value"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{00}c\r\n\r\n", "NUL in value"),
        ("GET / HTTP/1.1\nHost: a\n\n", "bare LF line ends"),
        ("GET /\u{01} HTTP/1.1\r\nHost: a\r\n\r\n", "control in target"),
        ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", "junk after version"),
        ("GET nope HTTP/1.1\r\nHost: a\r\n\r\n", "relative target"),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "asterisk not OPTIONS"),
        ("GET / HTTQ/1.1\r\nHost: a\r\n\r\n", "bad protocol"),
        ("\u{00}\u{01}\u{02}garbage\r\n\r\n", "binary garbage"),
    ])
    func malformedRequestsGet400AndClose(_ request: String, _ label: String) async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let (status, text) = try await self.statusAndClose(request, port: port)
            #expect(status == 400, "\(label): \(text)")
        }
    }

    @Test func otherHTTPVersionsGet505() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let (status, text) = try await self.statusAndClose("GET / HTTP/2.0\r\nHost: a\r\n\r\n", port: port)
            #expect(status == 505 || status == 400, "\(text)")
        }
    }

    @Test func absoluteFormTargetsAreAcceptedAndHTTP10NeedsNoHost() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let (status, text) = try await self.statusAndClose(
                "GET http://example.com/users/5 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", port: port)
            #expect(status == 200)
            #expect(text.hasSuffix("user 5"))
            let (old, _) = try await self.statusAndClose("GET /users/6 HTTP/1.0\r\n\r\n", port: port)
            #expect(old == 200)
        }
    }

    @Test func aMalformedRequestBehindAGoodOneIsAnsweredInOrder() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.exchange(
                "GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
                port: port
            )
            let responses = parseResponses(text)
            #expect(responses.map(\.status) == [200, 400])
            #expect(responses.first?.body == "user 1")
        }
    }

    @Test func oversizedHeadGets431AndClose() async throws {
        try await withLiveServer(responder: makeTestRouter(), configuration: try shortTimeouts(maxHead: 2048)) { port in
            let big = String(repeating: "v", count: 4000)
            let (status, _) = try await self.statusAndClose(
                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(big)\r\n\r\n", port: port)
            #expect(status == 431)
            let longTarget = "/" + String(repeating: "p", count: 4000)
            let (target, _) = try await self.statusAndClose("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", port: port)
            #expect(target == 431)
            let (fine, _) = try await self.statusAndClose(
                "GET / HTTP/1.1\r\nHost: a\r\nX-Small: \(big.prefix(1000))\r\nConnection: close\r\n\r\n", port: port)
            #expect(fine == 200)
        }
    }

    @Test func tooManyHeaderFieldsGet431() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let fields = (0..<150).map { "X-F\($0): v\r\n" }.joined()
            let (status, _) = try await self.statusAndClose("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n", port: port)
            #expect(status == 431)
        }
    }

    @Test func declaredBodyOverTheLimitGets413AndClose() async throws {
        try await withLiveServer(responder: makeTestRouter(), configuration: try shortTimeouts(maxBody: 1000)) { port in
            let (status, text) = try await self.statusAndClose(
                "POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", port: port)
            #expect(status == 413)
            #expect(parseResponses(text).first?.header("connection") == "close")
        }
    }

    @Test func chunkedBodyOverTheLimitGets413WhenTheLimitIsReached() async throws {
        try await withLiveServer(responder: makeTestRouter(), configuration: try shortTimeouts(maxBody: 1000)) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
                let chunk = String(repeating: "c", count: 600)
                try await client.send("258\r\n\(chunk)\r\n")
                try await client.send("258\r\n\(chunk)\r\n")
                let text = try await client.readUntilClose()
                #expect(parseResponses(text).first?.status == 413)
            }
            // At the limit exactly is fine.
            let exact = String(repeating: "c", count: 1000)
            let text = try await RawHTTPClient.exchange(
                "POST /collect HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n\(exact)\r\n0\r\n\r\n",
                port: port
            )
            #expect(parseResponses(text).first?.body == "1000")
        }
    }

    @Test func aStreamingHandlerOverTheLimitAbortsInsteadOfLookingComplete() async throws {
        try await withLiveServer(responder: makeTestRouter(), configuration: try shortTimeouts(maxBody: 1000)) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(String(repeating: "c", count: 600))\r\n"
                )
                try await client.send("258\r\n\(String(repeating: "c", count: 600))\r\n")
                let text = try await client.readUntilClose()
                // The echo started, so the only honest answer left is to cut the chunked body short.
                #expect(text.hasPrefix("HTTP/1.1 200"))
                #expect(!text.hasSuffix("0\r\n\r\n"))
            }
        }
    }

    @Test func slowlorisHeadIsAnswered408AndClosed() async throws {
        try await withLiveServer(
            responder: makeTestRouter(), configuration: try shortTimeouts(head: .milliseconds(500))
        ) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: a\r\n")
                // Keep trickling a header line every 50 ms, ten times faster than the timeout:
                // if arriving bytes restarted the head timer, the 408 would never come and the
                // loop would run out (400 lines, 20 s or more).
                var closed = false
                var text = ""
                for index in 0..<400 {
                    try? await client.send("X-\(index): y\r\n")
                    guard let buffer = try? await client.read(timeout: .milliseconds(50)) else { continue }
                    text += String(buffer: buffer)
                    closed = true
                    break
                }
                #expect(parseResponses(text).first?.status == 408)
                #expect(closed)
            }
        }
    }

    @Test func silentConnectionIsClosedByTheHeadTimeout() async throws {
        try await withLiveServer(
            responder: makeTestRouter(), configuration: try shortTimeouts(head: .milliseconds(300))
        ) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                let text = try await client.readUntilClose(timeout: .seconds(30))
                #expect(parseResponses(text).first?.status == 408)
            }
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        try await withLiveServer(
            responder: makeTestRouter(), configuration: try shortTimeouts(idle: .milliseconds(300))
        ) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n")
                let text = try await client.readUntilClose(timeout: .seconds(30))
                let responses = parseResponses(text)
                #expect(responses.count == 1)
                #expect(responses.first?.body == "user 1")
            }
        }
    }

    @Test func stalledBodyIsClosedByTheBodyTimeout() async throws {
        try await withLiveServer(
            responder: makeTestRouter(), configuration: try shortTimeouts(body: .milliseconds(300))
        ) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
                let text = try await client.readUntilClose(timeout: .seconds(30))
                #expect(parseResponses(text).first?.status != 200)
            }
        }
    }

    @Test func handlerErrorsBecome500WithoutDetailOrTheirOwnStatus() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /throw HTTP/1.1\r\nHost: a\r\n\r\nGET /forbidden HTTP/1.1\r\nHost: a\r\n\r\nGET /throw-in-body HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                let text = try await client.read(until: { parseResponses($0).count == 3 })
                let responses = parseResponses(text)
                #expect(responses.map(\.status) == [500, 403, 409])
                #expect(responses[0].body == "Internal Server Error")
                #expect(!text.contains("hunter2"))
                #expect(responses[1].body == "not yours")
                #expect(responses[2].body == "late conflict")
            }
        }
    }

    @Test func aBodyShorterThanItsDeclaredLengthClosesTheConnection() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.exchange(
                "GET /wrong-length HTTP/1.1\r\nHost: a\r\n\r\nGET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n", port: port)
            #expect(text.contains("Content-Length: 10") || text.lowercased().contains("content-length: 10"))
            #expect(!text.contains("user 1"))
        }
    }

    @Test func clientDisconnectMidResponseMakesTheWriterThrow() async throws {
        let events = ServerSideEvents()
        try await withLiveServer(responder: makeTestRouter(events: events)) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /infinite HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await client.read()
            }
            let event = await events.next()
            #expect(event?.hasPrefix("writer failed") == true)
            // The server is still healthy.
            let text = try await RawHTTPClient.exchange(
                "GET /users/7 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            #expect(parseResponses(text).first?.body == "user 7")
        }
    }

    @Test func invalidConfigurationIsRefusedWithEveryProblem() {
        do {
            _ = try HTTPServerConfiguration(
                port: 70000, maxRequestHeadSize: 10, requestHeadTimeout: .zero, serverName: "bad\nname")
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 4)
        }
    }
}
