import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// Keep-alive, pipelining, framing of responses, HEAD, HTTP/1.0, Expect, draining, routing.
@Suite struct ProtocolTests {
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /users/3 HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                let text = try await client.read(until: { parseResponses($0).count == 3 })
                let responses = parseResponses(text)
                #expect(responses.map(\.body) == ["user 1", "hello", "user 3"])
                #expect(responses.allSatisfy { $0.header("connection") == nil })
            }
        }
    }

    @Test func wholeAndStreamedResponsesLargerThanTheSocketsKeepTheirOrder() async throws {
        // Whole responses go straight into the pipeline while the channel is writable, streamed
        // ones through NIOAsyncChannel's writer. The client reads nothing until the second
        // request's handler ran: the first 8 MiB body cannot drain meanwhile, so the second
        // whole response finds the channel unwritable, takes the writer's path and waits.
        let size = 8 << 20
        let (secondRan, ran) = AsyncStream<Void>.makeStream()
        let router = Router<BasicContext>()
        router.get("/whole/:n") { _, context in
            let n = context.values.routeParameters["n"] ?? "?"
            if n == "2" { ran.yield() }
            let marker = "whole \(n)|"
            var body = ByteBuffer(string: marker)
            body.writeRepeatingByte(UInt8(ascii: "w"), count: size - marker.utf8.count)
            return ServerResponse(status: .ok, body: ResponseBody(buffer: body))
        }
        router.get("/streamed/:n") { _, context in
            let marker = "streamed \(context.values.routeParameters["n"] ?? "?")|"
            return ServerResponse(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: marker))
                    for _ in 0..<4 {
                        try await writer.write(ByteBuffer(repeating: UInt8(ascii: "s"), count: size / 4))
                    }
                })
        }
        router.get("/last") { _, _ in ServerResponse(status: .ok, body: .init(string: "last")) }
        try await withLiveServer(responder: router) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                var requests = ""
                for n in 1...4 {
                    requests += "GET /\(n % 3 == 0 ? "streamed" : "whole")/\(n) HTTP/1.1\r\nHost: a\r\n\r\n"
                }
                client.pauseReading()
                try await client.send(requests + "GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
                for await _ in secondRan { break }
                let text = try await client.read(until: { $0.hasSuffix("\r\n\r\nlast") }, timeout: .seconds(60))
                let responses = parseResponses(text)
                #expect(responses.map(\.status) == Array(repeating: 200, count: 5))
                #expect(
                    responses.map { String($0.body.prefix { $0 != "|" }) }
                        == ["whole 1", "whole 2", "streamed 3", "whole 4", "last"])
                for response in responses.dropLast() {
                    let marker = response.body.prefix { $0 != "|" }
                    // A streamed body is its marker and then `size` bytes; a whole one is `size` in all.
                    let expected = marker.hasPrefix("streamed") ? size + marker.utf8.count + 1 : size
                    #expect(response.body.utf8.count == expected, "\(marker)")
                }
            }
        }
    }

    @Test func unreadBodiesAreDrainedBeforeTheNextRequest() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                let body = String(repeating: "z", count: 100_000)
                try await client.send(
                    "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                try await client.send(
                    "POST /ignore HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                try await client.send("GET /users/9 HTTP/1.1\r\nHost: a\r\n\r\n")
                let responses = parseResponses(try await client.read(until: { parseResponses($0).count == 3 }))
                #expect(responses.map(\.body) == ["ignored", "ignored", "user 9"])
            }
        }
    }

    @Test func streamedBodiesAreChunkedWithTrailers() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /trailers HTTP/1.1\r\nHost: a\r\n\r\n")
                let responses = parseResponses(try await client.read(until: { parseResponses($0).count == 2 }))
                #expect(responses.count == 2)
                #expect(responses.first?.header("transfer-encoding") == "chunked")
                #expect(responses.first?.body == "abc")
                #expect(responses.last?.body == "data")
                #expect(responses.last?.trailers.first?.0.lowercased() == "x-checksum")
                #expect(responses.last?.trailers.first?.1 == "42")
            }
        }
    }

    @Test func headSendsTheLengthButNoBodyAndKeepsTheConnection() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                let text = try await client.read(until: { parseResponses($0, headRequests: 2).count == 3 })
                let responses = parseResponses(text, headRequests: 2)
                try #require(responses.count == 3, "\(text)")
                #expect(responses[0].header("content-length") == "13")
                #expect(responses[1].header("transfer-encoding") == nil)
                #expect(responses[1].header("content-length") == nil)
                #expect(responses[2].body == "user 2")
                #expect(!text.contains("Hello"))
                #expect(!text.contains("abc"))
            }
        }
    }

    @Test func http10ClosesUnlessAskedToKeepAlive() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let closed = try await RawHTTPClient.exchange("GET /users/1 HTTP/1.0\r\n\r\n", port: port)
            let first = try #require(parseResponses(closed).first)
            #expect(first.body == "user 1")
            #expect(first.header("connection") == "close")

            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /users/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let kept = parseResponses(try await client.read(until: { parseResponses($0).count == 1 }))
                #expect(kept.first?.header("connection") == "keep-alive")
                try await client.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let streamed = try await client.readUntilClose()
                #expect(!streamed.lowercased().contains("transfer-encoding"))
                #expect(streamed.hasSuffix("\r\n\r\nabc"))
                #expect(streamed.lowercased().contains("connection: close"))
            }
        }
    }

    @Test func aHandlersOwnConnectionTokenIsNotSentTwice() async throws {
        let router = Router<BasicContext>()
        router.get("/close") { _, _ in
            ServerResponse(status: .ok, headerFields: [.connection: "close"], body: .init(string: "bye"))
        }
        router.get("/kept") { _, _ in
            ServerResponse(status: .ok, headerFields: [.connection: "keep-alive"], body: .init(string: "kept"))
        }
        router.get("/other") { _, _ in
            ServerResponse(status: .ok, headerFields: [.connection: "x-trace"], body: .init(string: "other"))
        }
        /// The raw `Connection` lines of the first response in `text`.
        @Sendable func connectionLines(_ text: String) -> [String] {
            let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
            return head.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("connection:") }
        }
        try await withLiveServer(responder: router) { port in
            let closed = try await RawHTTPClient.exchange("GET /close HTTP/1.1\r\nHost: a\r\n\r\n", port: port)
            #expect(connectionLines(closed) == ["Connection: close"])
            #expect(parseResponses(closed).first?.body == "bye")

            let kept = try await RawHTTPClient.exchange(
                "GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /kept HTTP/1.0\r\n\r\n", port: port)
            #expect(connectionLines(kept) == ["Connection: keep-alive"])
            #expect(parseResponses(kept).map(\.body) == ["kept", "kept"])

            // A token the server does not own stays, and the server's own is added once.
            let other = try await RawHTTPClient.exchange("GET /other HTTP/1.0\r\n\r\n", port: port)
            #expect(connectionLines(other) == ["Connection: x-trace", "Connection: close"])
        }
    }

    @Test func connectionCloseTokenInAListCloses() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.exchange(
                "GET /users/1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: a\r\n\r\n",
                port: port
            )
            let responses = parseResponses(text)
            #expect(responses.map(\.body) == ["user 1"])
            #expect(responses.first?.header("connection") == "close")
        }
    }

    @Test func expectContinueIsSentOnlyWhenTheBodyIsRead() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                let interim = try await client.read(until: { $0.contains("\r\n\r\n") })
                #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
                try await client.send("ping")
                let final = try await client.read(until: { parseResponses($0).count == 1 })
                #expect(parseResponses(final).first?.body == "ping")
            }
            // A handler that never reads: no 100, and the connection closes after the answer.
            let ignored = try await RawHTTPClient.exchange(
                "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", port: port
            )
            #expect(!ignored.contains("100 Continue"))
            #expect(parseResponses(ignored).first?.body == "ignored")
            #expect(parseResponses(ignored).first?.header("connection") == "close")
            let unknown = try await RawHTTPClient.exchange(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: teapot\r\n\r\n", port: port)
            #expect(parseResponses(unknown).first?.status == 417)
        }
    }

    @Test func expectContinueOverTheLimitGets413WithoutContinue() async throws {
        try await withLiveServer(responder: makeTestRouter(), configuration: try shortTimeouts(maxBody: 1000)) { port in
            let text = try await RawHTTPClient.exchange(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", port: port
            )
            #expect(!text.contains("100 Continue"))
            #expect(parseResponses(text).first?.status == 413)
        }
    }

    @Test func routerParametersLiteralsAndCatchAll() async throws {
        let client = TestClient(responder: makeTestRouter())
        #expect(try await client.execute(.get, "/users/42").bodyString == "user 42")
        #expect(try await client.execute(.get, "/users/me").bodyString == "me")
        #expect(try await client.execute(.get, "/users/42/files/a/b.txt?x=1").bodyString == "42 a/b.txt")
        #expect(try await client.execute(.get, "/users").status == .notFound)
        let options = try await client.execute(.options, "/users/42")
        #expect(options.status == .noContent)
        #expect(options.headerFields[.allow] == "GET, HEAD, OPTIONS")
        #expect(try await client.execute(.init("BREW")!, "/users/42").status == .notImplemented)
        #expect(try await client.execute(.put, "/users/42").status == .methodNotAllowed)
    }

    @Test func methodsTheServerDoesNotRouteGetDefinedAnswers() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let connect = try await RawHTTPClient.exchange(
                "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", port: port)
            #expect(parseResponses(connect).first?.status == 405)
            #expect(parseResponses(connect).first?.header("connection") == "close")
            let trace = try await RawHTTPClient.exchange(
                "TRACE /users/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            #expect(parseResponses(trace).first?.status == 405)
            let asterisk = try await RawHTTPClient.exchange(
                "OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            #expect(parseResponses(asterisk).first?.status == 204)
        }
    }

    @Test func aBodyReadFromTwoTasksAtOnceFailsInsteadOfRacing() async throws {
        let events = ServerSideEvents()
        let router = Router<BasicContext>()
        router.post("/twice") { request, _ in
            // Whichever reader comes second fails at once; the other waits for the body, which
            // the client sends only after hearing of the failure.
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            return "read \(try await request.body.collect(upTo: .max).readableBytes)"
                        } catch is ConcurrentBodyReadError {
                            events.record("concurrent read refused")
                            return "refused"
                        } catch {
                            return "other error"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }.sorted()
            }
            return ServerResponse(status: .ok, body: .init(string: outcomes.joined(separator: ",")))
        }
        try await withLiveServer(responder: router) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /twice HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\n")
                #expect(await events.next() == "concurrent read refused")
                try await client.send("hello")
                let text = try await client.readUntilClose()
                #expect(parseResponses(text).first?.body == "read 5,refused")
            }
        }
    }

    @Test func aBodyWriterMayChangeTheHeadUntilItsFirstByte() async throws {
        let router = Router<BasicContext>()
        router.get("/late") { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.contentType: "text/plain", HTTPField.Name("X-Step")!: "before"],
                body: ResponseBody { writer in
                    let early = writer.updateHeaderFields { fields in
                        fields[HTTPField.Name("X-Step")!] = "changed"
                        fields[.contentLength] = "999"  // framing stays the server's
                        fields[.connection] = "close"
                    }
                    try await writer.write(ByteBuffer(string: "early=\(early) "))
                    let late = writer.updateHeaderFields { $0[HTTPField.Name("X-Step")!] = "too late" }
                    try await writer.write(ByteBuffer(string: "late=\(late)"))
                })
        }
        try await withLiveServer(responder: router) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /late HTTP/1.1\r\nHost: a\r\n\r\nGET /late HTTP/1.1\r\nHost: a\r\n\r\n")
                let responses = parseResponses(try await client.read(until: { parseResponses($0).count == 2 }))
                for response in responses {
                    #expect(response.body == "early=true late=false")
                    #expect(response.header("x-step") == "changed")
                    #expect(response.header("content-length") == nil)
                    #expect(response.header("transfer-encoding") == "chunked")
                    #expect(response.header("connection") == nil, "the connection stays open")
                }
            }
        }
    }

    @Test func datesAreIMFFixdate() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let before = SystemWallClock().now().secondsSince1970
            let text = try await RawHTTPClient.exchange(
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            let after = SystemWallClock().now().secondsSince1970
            let date = try #require(parseResponses(text).first?.header("date"))
            let parsed = try #require(HTTPDate.parse(date))
            // The response was made between the two readings (the field has whole seconds).
            #expect((before...after).contains(parsed), "\(before) \(parsed) \(after)")
        }
    }
}
