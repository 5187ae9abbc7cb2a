import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Synchronization
import Testing

/// Closing, liveness, limits on the way out, concurrency.
@Suite struct LifecycleTests {
    @Test func aHandlerThatReturnsClosesWith1000AndOneThatThrowsWith1011() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/goodbye") { client in
                let (before, close) = try await client.readUntilClose()
                #expect(before.map(\.text) == ["goodbye"])
                #expect(close?.closeCode == 1000)
                try await client.send(opcode: 0x8, payload: [0x03, 0xE8])
                #expect(try await client.serverClosesConnection())
            }
            try await WSTestClient.with(port: port, path: "/throws") { client in
                try await client.sendText("boom")
                let (_, close) = try await client.readUntilClose()
                #expect(close?.closeCode == 1011)
            }
        }
    }

    @Test func aClientThatNeverAnswersTheCloseIsDroppedAfterTheCloseTimeout() async throws {
        let router = try webSocketRouter { $0.closeTimeout = .milliseconds(200) }
        try await withLiveServer(responder: router) { port in
            try await WSTestClient.with(port: port, path: "/goodbye") { client in
                let (_, close) = try await client.readUntilClose()
                #expect(close?.closeCode == 1000)
                // No close frame back: the server gives up on its own.
                #expect(try await client.serverClosesConnection(timeout: .seconds(5)))
            }
        }
    }

    @Test func aClientThatAnswersPingsStaysConnected() async throws {
        // A generous pong deadline: this test process also runs the client, which other tests
        // can keep off the CPU for a while.
        let router = try webSocketRouter {
            $0.pingInterval = .milliseconds(100)
            $0.pongTimeout = .seconds(20)
        }
        try await withLiveServer(responder: router) { port in
            try await WSTestClient.with(port: port) { client in
                for _ in 0..<4 {
                    let ping = try #require(try await client.readFrame(timeout: .seconds(20)))
                    #expect(ping.opcode == 0x9)
                    try await client.send(opcode: 0xA, payload: ping.payload)
                }
                try await client.sendText("alive")
                #expect(try await client.readMessage(timeout: .seconds(20))?.payload == Array("alive".utf8))
            }
        }
    }

    @Test func aVanishedClientIsDetectedByThePingDeadline() async throws {
        let router = try webSocketRouter {
            $0.pingInterval = .milliseconds(100)
            $0.pongTimeout = .milliseconds(300)
        }
        try await withLiveServer(responder: router) { port in
            // A client that answers nothing is dropped, without a close handshake.
            try await WSTestClient.with(port: port) { client in
                var pings = 0
                var closes = 0
                while let frame = try await client.readFrame(timeout: .seconds(20)) {
                    if frame.opcode == 0x9 { pings += 1 }
                    if frame.opcode == 0x8 { closes += 1 }
                }
                #expect(pings >= 1)
                #expect(closes == 0)
            }
        }
    }

    @Test func aClientFINWithoutACloseFrameIsAnAbnormalClose1006() async throws {
        let events = ServerSideEvents()
        let endpoint = try WebSocketEndpoint(configuration: WebSocketConfiguration())
        let router = Router<BasicContext>()
        router.get("/watch") { request, context in
            endpoint.upgrade(request, context: context) { socket in
                for try await message in socket.messages { try await socket.send(message) }
                events.record("ended with \(socket.closeReason.map { "\($0.code)" } ?? "none")")
                do {
                    try await socket.send(text: "after the FIN")
                    events.record("sent after the FIN")
                } catch {
                    events.record("send refused: \(type(of: error))")
                }
            }
        }
        try await withLiveServer(responder: router) { port in
            try await WSTestClient.with(port: port, path: "/watch") { client in
                try await client.sendText("before")
                #expect(try await client.readMessage()?.payload == Array("before".utf8))
                client.connection.shutdownOutput()
                #expect(await events.next() == "ended with 1006")
                #expect(await events.next() == "send refused: WebSocketClosedError")
                // Nothing follows, not even a close frame: the server releases the connection.
                let (before, close) = try await client.readUntilClose()
                #expect(before.isEmpty && close == nil)
            }
        }
    }

    @Test func idleConnectionsAreClosedWith1001() async throws {
        let router = try webSocketRouter {
            $0.pingInterval = nil
            $0.idleTimeout = .milliseconds(200)
        }
        try await withLiveServer(responder: router) { port in
            try await WSTestClient.with(port: port) { client in
                let (_, close) = try await client.readUntilClose(timeout: .seconds(5))
                #expect(close?.closeCode == 1001)
            }
        }
    }

    @Test func gracefulShutdownSends1001ToOpenSockets() async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "strata.test.websocket.shutdown")
        var configuration = try HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.shutdownTimeout = .seconds(10)
        let server = HTTPServer(responder: try webSocketRouter(), configuration: configuration, logger: logger) {
            continuation.yield($0.port ?? 0)
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await WSTestClient.with(port: port) { client in
                try await client.sendText("before")
                #expect(try await client.readMessage()?.payload == Array("before".utf8))
                await group.triggerGracefulShutdown()
                let (_, close) = try await client.readUntilClose()
                #expect(close?.closeCode == 1001)
                try await client.send(opcode: 0x8, payload: [0x03, 0xE9])
                #expect(try await client.serverClosesConnection())
            }
            try await tasks.waitForAll()
        }
    }

    @Test func messagesSentFromManyTasksAtOnceArriveWhole() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/burst/8") { client in
                var counts = [Int](repeating: 0, count: 8)
                for _ in 0..<(8 * 20) {
                    let message = try #require(try await client.readMessage())
                    let byte = try #require(message.payload.first)
                    #expect(message.payload.allSatisfy { $0 == byte }, "frames of two messages interleaved")
                    let task = Int(byte)
                    let size = 100 + (task * 7919 + counts[task] * 104_729) % 200_000
                    #expect(message.payload.count == size)
                    counts[task] += 1
                }
                #expect(counts == [Int](repeating: 20, count: 8))
            }
        }
    }

    @Test func aSlowConsumerIsClosedWith1013UnderTheClosePolicy() async throws {
        let gate = Gate()
        try await withLiveServer(responder: try webSocketRouter(gate: gate)) { port in
            try await WSTestClient.with(port: port, path: "/flood-close", pausing: true) { client in
                #expect(await gate.wait(timeout: .seconds(20)), "the senders gave up")
                let (before, close) = try await client.readUntilClose()
                #expect(close?.closeCode == 1013)
                #expect(before.count < 64 * 8, "not every message was sent")
            }
        }
    }

    @Test func aSlowConsumerLosesMessagesUnderTheDropPolicy() async throws {
        let gate = Gate()
        try await withLiveServer(responder: try webSocketRouter(gate: gate)) { port in
            try await WSTestClient.with(port: port, path: "/flood-drop", pausing: true) { client in
                #expect(await gate.wait(timeout: .seconds(20)), "the senders finished")
                var binary = 0
                while true {
                    let message = try #require(try await client.readMessage())
                    if message.opcode == 0x1 {
                        let dropped =
                            Int(String(decoding: message.payload, as: UTF8.self).split(separator: " ")[1]) ?? 0
                        #expect(dropped > 0)
                        #expect(binary + dropped == 64 * 8)
                        break
                    }
                    binary += 1
                }
            }
        }
    }

    @Test func aSecondConcurrentReaderIsRefused() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/two-readers") { client in
                #expect(try await client.readMessage()?.payload == Array("refused a second reader".utf8))
                try await client.sendText("still served")  // the first reader goes on
                try await client.send(opcode: 0x8, payload: [0x03, 0xE8])
                let (_, close) = try await client.readUntilClose()
                #expect(close?.closeCode == 1000)
            }
        }
    }
}
