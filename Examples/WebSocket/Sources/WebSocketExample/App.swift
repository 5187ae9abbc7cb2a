import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataServer
import StrataWebSocket
import UnixSignals

/// The WebSocket example: an echo endpoint for conformance suites, a topic chat, and a page that
/// uses the chat.
///
///     swift run WebSocketExample --port 8080
///     open http://127.0.0.1:8080/ in two tabs
///     python3 -m websockets ws://127.0.0.1:8080/echo
@main
struct WebSocketExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let port =
            arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) }
            ?? ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 8080
        let host = arguments.firstIndex(of: "--host").map { arguments[$0 + 1] } ?? "127.0.0.1"
        let logger = Logger(label: "websocket-example")
        let server = HTTPServer(
            responder: try buildResponder(),
            configuration: try HTTPServerConfiguration(host: host, port: port),
            logger: logger
        )
        try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// The example's routes; the tests and the benchmark script serve them too.
///
/// - Parameter hub: The chat's topics (a test passes its own to watch the rooms).
func buildResponder(hub: WebSocketHub = WebSocketHub()) throws -> Router<BasicContext> {
    // /echo: every message back unchanged, permessage-deflate offered, 16 MiB messages (the
    // large cases of conformance suites), any origin (suites send their own).
    var echoConfiguration = WebSocketConfiguration()
    echoConfiguration.maxFrameSize = 16 << 20
    echoConfiguration.maxMessageSize = 16 << 20
    echoConfiguration.compression = PerMessageDeflate()
    echoConfiguration.originPolicy = .dangerouslyAllowAnyOrigin
    let echo = try WebSocketEndpoint(configuration: echoConfiguration)

    // /chat: same-origin pages only (the default), 64 KiB messages, compressed when offered.
    var chatConfiguration = WebSocketConfiguration()
    chatConfiguration.maxFrameSize = 64 << 10
    chatConfiguration.maxMessageSize = 64 << 10
    chatConfiguration.compression = PerMessageDeflate()
    let chat = try WebSocketEndpoint(configuration: chatConfiguration)

    let router = Router<BasicContext>()
    router.get("/") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"], body: .init(string: chatPage))
    }
    router.get("/echo") { request, context in
        echo.upgrade(request, context: context) { socket in
            for try await message in socket.messages { try await socket.send(message) }
        }
    }
    router.get("/chat") { request, context in
        // `?room=name` picks the topic; everyone in a room sees every message in it.
        let room = roomName(request.query)
        return chat.upgrade(request, context: context) { socket in
            try await hub.join(socket) { member in
                member.subscribe(to: room)
                hub.publish(.text("* someone joined \(room)"), to: room, excluding: socket)
                defer { hub.publish(.text("* someone left \(room)"), to: room) }
                for try await message in socket.messages {
                    guard case .text(let text) = message else { continue }
                    hub.publish(.text(text), to: room)
                }
            }
        }
    }
    return router
}

/// The `room` query parameter when it is a plain name (letters, digits, `-`, `_`), else "lobby".
func roomName(_ query: Substring?) -> String {
    for pair in (query ?? "").split(separator: "&") where pair.hasPrefix("room=") {
        let name = pair.dropFirst(5)
        if !name.isEmpty, name.count <= 64,
            name.unicodeScalars.allSatisfy({
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_")
            })
        {
            return String(name)
        }
    }
    return "lobby"
}
