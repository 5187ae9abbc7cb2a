import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataReverseProxy
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Synchronization
import Testing

/// Bodies that stream, events that must not wait, trailers, 100-continue and upgrades.
@Suite struct StreamingTests {
    @Test func anEventReachesTheClientBeforeTheUpstreamSendsTheNextOne() async throws {
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        try await withUpstream({ router in
            router.get("/events") { _, _ in
                ServerResponse(
                    status: .ok, headerFields: [.contentType: "text/event-stream"],
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(string: "data: first\n\n"))
                        // The second event waits until the client has seen the first.
                        for await _ in gate { break }
                        try await writer.write(ByteBuffer(string: "data: second\n\n"))
                    })
            }
        }) { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                try await RawHTTPClient.withConnection(port: port) { client in
                    try await client.send("GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
                    let first = try await client.read(until: { $0.contains("data: first") }, timeout: .seconds(10))
                    #expect(first.contains("data: first"))
                    #expect(!first.contains("data: second"))
                    open.yield()
                    let rest = try await client.read(until: { $0.contains("data: second") }, timeout: .seconds(10))
                    #expect(rest.contains("data: second"))
                }
            }
        }
    }

    @Test func trailersAreForwardedWhenTheClientAcceptsThem() async throws {
        try await withUpstream({ router in
            router.get("/t") { _, _ in
                ServerResponse(
                    status: .ok,
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(string: String(repeating: "x", count: 40_000)))
                        try await writer.finish(trailers: [HTTPField.Name("X-Checksum")!: "abc"])
                    })
            }
        }) { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                let text = try await RawHTTPClient.withConnection(port: port) { client in
                    try await client.send("GET /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
                    return try await client.read(until: { $0.hasSuffix("\r\n\r\n") && $0.contains("X-Checksum") })
                }
                let response = try #require(parseResponses(text).first)
                #expect(response.body.count == 40_000)
                #expect(response.trailers.contains { $0.0.lowercased() == "x-checksum" && $0.1 == "abc" })
            }
        }
    }

    @Test func expectContinueWaitsForTheUpstreamsAnswer() async throws {
        let upstream = try await RawUpstream.start { pending, _ in
            if pending == "hello" { return .reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") }
            guard let end = pending.range(of: "\r\n\r\n") else { return .wait }
            if pending.contains("/refuse") {
                return .replyAndClose("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            }
            if pending[end.upperBound...].isEmpty { return .reply("HTTP/1.1 100 Continue\r\n\r\n") }
            guard pending.hasSuffix("hello") else { return .wait }
            return .reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        defer { Task { await upstream.stop() } }
        var configuration = try configuration(upstream.port)
        configuration.expectContinueTimeout = .seconds(30)
        try await withProxy(configuration) { port, _ in
            // Refused on the head: the client never sends its body, and never needs to.
            let refused = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                return try await client.read(until: { parseResponses($0).count == 1 })
            }
            #expect(parseResponses(refused).first?.status == 401)
            #expect(!refused.contains("100 Continue"))
            #expect(upstream.received.first?.contains("Expect: 100-continue") == true)
            // Accepted: the upstream's 100 lets the proxy read the body, which sends the client its 100.
            let accepted = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /ok HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                let interim = try await client.read(until: { $0.contains("100 Continue\r\n\r\n") })
                try await client.send("hello")
                return interim + (try await client.read(until: { $0.contains("\r\n\r\nok") }))
            }
            #expect(accepted.hasPrefix("HTTP/1.1 100 Continue\r\n\r\n"))
            #expect(accepted.hasSuffix("ok"))
        }
    }

    @Test func aWebSocketRunsThroughTheProxyToAStrataWebSocketUpstream() async throws {
        let endpoint = try WebSocketEndpoint(
            configuration: {
                var configuration = WebSocketConfiguration()
                configuration.originPolicy = .dangerouslyAllowAnyOrigin
                configuration.compression = PerMessageDeflate()
                return configuration
            }())
        try await withUpstream({ router in
            router.get("/ws") { request, context in
                endpoint.upgrade(request, context: context) { socket in
                    for try await message in socket.messages { try await socket.send(message) }
                }
            }
        }) { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                let script = """
                    import sys
                    from websockets.sync.client import connect
                    with connect(f"ws://127.0.0.1:{sys.argv[1]}/ws", open_timeout=20) as ws:
                        ws.send("hello through the proxy")
                        print(ws.recv(timeout=20))
                        ws.send(bytes(range(256)) * 400)
                        echoed = ws.recv(timeout=20)
                        print(len(echoed), echoed == bytes(range(256)) * 400)
                        print(ws.response.headers.get("Sec-WebSocket-Extensions", "none"))
                    """
                let output = try await ExternalProcess.run(try ExternalProcess.python(), ["-c", script, String(port)])
                #expect(output.status == 0, "\(output.stderr)")
                let lines = output.stdout.split(separator: "\n")
                #expect(lines.first == "hello through the proxy")
                #expect(lines.dropFirst().first == "102400 True")
                #expect(lines.dropFirst(2).first?.contains("permessage-deflate") == true)
            }
        }
    }

    @Test func aNon101AnswerToAnUpgradeIsRelayedAsAnOrdinaryResponse() async throws {
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            return .reply("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot today")
        }
        defer { Task { await upstream.stop() } }
        try await withProxy(try configuration(upstream.port)) { port, _ in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nRAW BYTES")
                return try await client.readUntilClose()
            }
            let response = try #require(parseResponses(text).first)
            #expect(response.status == 200)
            #expect(response.body == "not today")
            #expect(response.header("Upgrade") == nil)
            // The upstream was asked to upgrade, and got no tunnelled bytes.
            #expect(upstream.allReceived.contains("Upgrade: websocket\r\n"))
            #expect(!upstream.allReceived.contains("RAW BYTES"))
        }
    }

    @Test func a101WithAWrongAcceptOrUpgradeIsA502AndNoTunnel() async throws {
        for answer in [
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: wrong=\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        ] {
            let upstream = try await RawUpstream.start { pending, _ in
                pending.hasCompleteRequest ? .reply(answer) : .wait
            }
            defer { Task { await upstream.stop() } }
            var configuration = try configuration(upstream.port)
            configuration.retries.maxRetries = 0
            try await withProxy(configuration) { port, _ in
                let text = try await RawHTTPClient.withConnection(port: port) { client in
                    try await client.send(
                        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                    return try await client.readUntilClose()
                }
                #expect(parseResponses(text).first?.status == 502)
            }
        }
    }

    @Test func anIdleTunnelIsClosedAtTheTunnelIdleTimeout() async throws {
        // A WebSocket upstream that completes the handshake, echoes one message's bytes, then
        // says nothing more.
        let upstream = try await RawUpstream.start { pending, _ in
            if pending == "ping" { return .reply("pong") }
            guard pending.hasCompleteRequest else { return .wait }
            let accept = Base64.encode(
                SHA1.hash(Array("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)))
            return .reply(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Accept: \(accept)\r\n\r\n")
        }
        defer { Task { await upstream.stop() } }
        var configuration = try configuration(upstream.port)
        // Long enough for a loaded machine to send the ping in time, short enough to wait for.
        configuration.timeouts.tunnelIdle = .seconds(2)
        try await withProxy(configuration) { port, _ in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                let head = try await client.read(until: { $0.contains("\r\n\r\n") })
                try await client.send("ping")
                let echoed = try await client.read(until: { $0.contains("pong") })
                // Then nothing either way: the proxy closes the tunnel (a read ends, not times out).
                let rest = try await client.readUntilClose(timeout: .seconds(20))
                return head + echoed + rest
            }
            #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols"))
            #expect(text.hasSuffix("pong"))
            #expect(upstream.allReceived.hasSuffix("ping"))
        }
    }

    @Test func earlyHintsAreRelayedBeforeTheFinalResponse() async throws {
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            return .reply(
                "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\nConnection: X-Hop\r\nX-Hop: h\r\n\r\n"
                    + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        defer { Task { await upstream.stop() } }
        try await withProxy(try configuration(upstream.port)) { port, _ in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                return try await client.read(until: { $0.hasSuffix("\r\n\r\nok") })
            }
            let responses = parseResponses(text)
            #expect(responses.map(\.status) == [103, 200])
            #expect(responses.first?.header("Link") == "</app.css>; rel=preload; as=style")
            #expect(responses.first?.header("X-Hop") == nil)
            #expect(responses.last?.body == "ok")
            // HTTP/1.0 has no 1xx: its client gets the final response only.
            let old = try await RawHTTPClient.exchange("GET / HTTP/1.0\r\n\r\n", port: port)
            #expect(parseResponses(old).map(\.status) == [200])
        }
    }

    @Test func anH2CUpgradeIsNotForwarded() async throws {
        try await withEchoUpstream { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                let text = try await RawHTTPClient.withConnection(port: port) { client in
                    try await client.send(
                        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                            + "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
                    return try await client.readUntilClose()
                }
                let response = try #require(parseResponses(text).first)
                #expect(response.status == 200)
                #expect(!response.body.lowercased().contains("upgrade"))
                #expect(!response.body.lowercased().contains("http2-settings"))
            }
        }
    }
}
