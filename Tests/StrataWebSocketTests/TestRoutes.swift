import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataWebSocket

/// The endpoints the WebSocket tests drive.
func webSocketRouter(
    configure: (inout WebSocketConfiguration) throws -> Void = { _ in },
    gate: Gate = Gate()
) throws -> Router<BasicContext> {
    var base = WebSocketConfiguration()
    base.maxMessageSize = 16 << 20
    base.maxFrameSize = 16 << 20
    try configure(&base)
    let echo = try WebSocketEndpoint(configuration: base)
    var small = base
    small.maxFrameSize = 1000
    small.maxMessageSize = 2000
    let limited = try WebSocketEndpoint(configuration: small)
    var deflating = base
    deflating.compression = deflating.compression ?? PerMessageDeflate()
    let deflate = try WebSocketEndpoint(configuration: deflating)
    var deflatingSmall = small
    deflatingSmall.compression = PerMessageDeflate()
    let deflateLimited = try WebSocketEndpoint(configuration: deflatingSmall)
    let router = Router<BasicContext>()
    // Echo endpoints: every message back as it came.
    for (path, endpoint) in [
        ("/deflate", deflate), ("/deflate-limited", deflateLimited), ("/echo", echo), ("/limited", limited),
    ] {
        router.get(path) { request, context in
            endpoint.upgrade(request, context: context) { socket in
                for try await message in socket.messages { try await socket.send(message) }
            }
        }
    }
    router.get("/two-readers") { request, context in
        // Two tasks iterate the same socket: whichever comes second gets an error instead of
        // racing the first, which goes on reading until the close.
        echo.upgrade(request, context: context) { socket in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            for try await _ in socket.messages {}
                        } catch is WebSocketConcurrentReadError {
                            try await socket.send(text: "refused a second reader")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
    router.get("/sensitive") { request, context in
        deflate.upgrade(request, context: context) { socket in
            for try await message in socket.messages { try await socket.send(message, sensitive: true) }
        }
    }
    router.get("/throws") { request, context in
        echo.upgrade(request, context: context) { socket in
            for try await _ in socket.messages { throw TestHandlerError() }
        }
    }
    router.get("/goodbye") { request, context in
        // Sends one message and returns: the server closes with 1000.
        echo.upgrade(request, context: context) { socket in
            try await socket.send(text: "goodbye")
        }
    }
    router.get("/big/:size") { request, context in
        let size = Int(context.values.routeParameters["size"] ?? "0") ?? 0
        return echo.upgrade(request, context: context) { socket in
            try await socket.send(.binary(ByteBuffer(repeating: 0x61, count: size)))
            for try await _ in socket.messages {}
        }
    }
    router.get("/burst/:tasks") { request, context in
        // Several tasks send at once: every message must arrive whole.
        let tasks = Int(context.values.routeParameters["tasks"] ?? "1") ?? 1
        return echo.upgrade(request, context: context) { socket in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        for index in 0..<20 {
                            let size = 100 + (task * 7919 + index * 104_729) % 200_000
                            let byte = UInt8(truncatingIfNeeded: task)
                            try await socket.send(.binary(ByteBuffer(repeating: byte, count: size)))
                        }
                    }
                }
                try await group.waitForAll()
            }
            for try await _ in socket.messages {}
        }
    }
    for policy in [WebSocketConfiguration.SlowConsumerPolicy.close, .dropMessage] {
        var flooded = base
        flooded.maxQueuedBytes = 1 << 20
        flooded.slowConsumerPolicy = policy
        let endpoint = try WebSocketEndpoint(configuration: flooded)
        router.get(policy == .close ? "/flood-close" : "/flood-drop") { request, context in
            // 64 tasks send 64 KiB messages at once to a client that does not read yet.
            // The gate opens at the first drop or refusal, when the client may start reading.
            endpoint.upgrade(request, context: context) { socket in
                let dropped = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            var dropped = 0
                            for _ in 0..<8 {
                                do {
                                    let message = WebSocketMessage.binary(ByteBuffer(repeating: 1, count: 64 << 10))
                                    if try await socket.send(message) == .dropped {
                                        dropped += 1
                                        gate.open()
                                    }
                                } catch {
                                    gate.open()
                                    throw error
                                }
                            }
                            return dropped
                        }
                    }
                    return try await group.reduce(0, +)
                }
                try await socket.send(text: "dropped \(dropped)")
                for try await _ in socket.messages {}
            }
        }
    }
    // Chat rooms on two hubs: one closes slow members, one drops their oldest messages.
    let hubs = [
        "close": WebSocketHub(outboxLimit: 256 << 10, policy: .close),
        "drop": WebSocketHub(outboxLimit: 256 << 10, policy: .dropOldest),
        "newest": WebSocketHub(outboxLimit: 256 << 10, policy: .dropNewest),
    ]
    // A slow member's close frame waits behind what it has not read; give it time to read.
    var patient = base
    patient.closeTimeout = .seconds(60)
    let chat = try WebSocketEndpoint(configuration: patient)
    router.get("/chat/:hub") { request, context in
        guard let hub = hubs[String(context.values.routeParameters["hub"] ?? "")] else {
            return ServerResponse(status: .notFound)
        }
        return chat.upgrade(request, context: context) { socket in
            try await hub.join(socket) { member in
                member.subscribe(to: "room")
                for try await message in socket.messages { hub.publish(message, to: "room") }
            }
        }
    }
    router.get("/publish/:hub/:count/:size") { _, context in
        let parameters = context.values.routeParameters
        guard let hub = hubs[String(parameters["hub"] ?? "")], let count = Int(parameters["count"] ?? ""),
            let size = Int(parameters["size"] ?? "")
        else { return ServerResponse(status: .badRequest) }
        var deliveries = 0
        for index in 0..<count {
            // Each message starts with its number, padded to `size` bytes.
            let text = "\(index) " + String(repeating: "x", count: max(0, size - 12))
            deliveries += hub.publish(.text(text), to: "room")
        }
        return ServerResponse(status: .ok, body: ResponseBody(string: "\(deliveries)"))
    }
    router.get("/count/:hub") { _, context in
        let count = hubs[String(context.values.routeParameters["hub"] ?? "")]?.subscriberCount(of: "room") ?? -1
        return ServerResponse(status: .ok, body: ResponseBody(string: "\(count)"))
    }
    return router
}

struct TestHandlerError: Error {}
