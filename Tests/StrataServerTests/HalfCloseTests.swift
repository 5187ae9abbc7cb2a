import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// A client that half-closes (sends FIN) after its requests is still answered (RFC 9112 §9.6):
/// every complete request before the FIN gets its response, in order, then the server closes.
@Suite struct HalfCloseTests {
    /// Sends `bytes`, half-closes, and reads until the server closes.
    func sendThenHalfClose(_ bytes: String, port: Int) async throws -> String {
        try await RawHTTPClient.withConnection(port: port) { client in
            try await client.send(bytes)
            client.shutdownOutput()
            return try await client.readUntilClose()
        }
    }

    @Test(arguments: [
        ("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n", "user 1", "GET"),
        ("GET /users/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "user 2", "GET with Connection: close"),
        ("GET /users/3 HTTP/1.0\r\n\r\n", "user 3", "HTTP/1.0 GET"),
        ("GET /users/4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "user 4", "HTTP/1.0 keep-alive GET"),
        ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "hello", "POST with Content-Length"),
        (
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "hello world", "chunked POST"
        ),
    ])
    func aCompleteRequestBeforeTheFINIsAnswered(_ request: String, _ body: String, _ label: String) async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await self.sendThenHalfClose(request, port: port)
            let responses = parseResponses(text)
            #expect(responses.map(\.status) == [200], "\(label): \(text)")
            #expect(responses.first?.body == body, "\(label)")
        }
    }

    @Test func pipelinedRequestsBeforeTheFINAreAllAnsweredInOrder() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await self.sendThenHalfClose(
                "GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /users/3 HTTP/1.1\r\nHost: a\r\n\r\n",
                port: port
            )
            #expect(parseResponses(text).map(\.body) == ["user 1", "abc", "user 3"], "\(text)")
        }
    }

    @Test func aHeadCutByTheFINGets400() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await self.sendThenHalfClose("GET /users/1 HTTP/1.1\r\nHost: a\r\nX-Half: ", port: port)
            #expect(parseResponses(text).map(\.status) == [400], "\(text)")
        }
    }

    @Test func aGoodRequestThenACutHeadGets200Then400() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await self.sendThenHalfClose(
                "GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /users/2 HTT", port: port)
            #expect(parseResponses(text).map(\.status) == [200, 400], "\(text)")
        }
    }

    @Test func aBodyCutByTheFINClosesWithoutAResponse() async throws {
        let events = ServerSideEvents()
        let router = makeTestRouter(events: events)
        router.post("/record-body") { request, _ in
            do {
                _ = try await request.body.collect(upTo: .max)
                events.record("body complete")
            } catch {
                events.record("body failed: \(type(of: error))")
                throw error
            }
            return ServerResponse(status: .ok)
        }
        try await withLiveServer(responder: router) { port in
            let text = try await self.sendThenHalfClose(
                "POST /record-body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", port: port)
            // The handler saw the body fail; the answer, if any, is an error that closes.
            #expect(await events.next()?.hasPrefix("body failed") == true)
            let statuses = parseResponses(text).map(\.status)
            #expect(statuses.isEmpty || statuses == [400], "\(text)")
        }
    }

    @Test func aStreamingResponseHalfClosedMidwayArrivesWhole() async throws {
        let events = ServerSideEvents()
        let gate = Gate()
        try await withLiveServer(responder: makeTestRouter(events: events, gate: gate)) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /gated-stream HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(await events.next() == "first written")
                let start = try await client.read(until: { $0.contains("first;") })
                client.shutdownOutput()
                // Give the FIN time to reach the server's read side before the stream resumes: the
                // expectation is the same whatever the order.
                try await Task.sleep(for: .milliseconds(50))
                gate.open()
                let text = start + (try await client.readUntilClose())
                let responses = parseResponses(text)
                #expect(responses.map(\.status) == [200], "\(text)")
                #expect(responses.first?.body == "first;second;third")
            }
        }
    }

    @Test func aFINOnAnIdleConnectionClosesIt() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n")
                let first = try await client.read(until: { parseResponses($0).count == 1 })
                client.shutdownOutput()
                return first + (try await client.readUntilClose())
            }
            #expect(parseResponses(text).map(\.body) == ["user 1"])
        }
    }

    @Test func anUpgradedConnectionEndsItsReadSideOnTheFIN() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await self.sendThenHalfClose(
                "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nping", port: port)
            // The echo protocol answers what came before the FIN, sees the end and finishes.
            #expect(text.hasPrefix("HTTP/1.1 101"))
            #expect(text.hasSuffix("\r\n\r\nping"), "\(text)")
        }
    }
}
