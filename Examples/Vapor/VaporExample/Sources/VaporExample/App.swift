import Strata
import StrataCORS
import StrataCompression
import StrataVapor
import StrataWebSocket
import Vapor

/// Vapor 4 serving the same routes as the Hummingbird example, behind StrataCORS and
/// StrataCompression run as one Vapor middleware, plus a Strata WebSocket echo on Vapor's
/// connection.
///
///     cd Examples/Vapor/VaporExample && swift run VaporExample --port 8080
///     curl --compressed -H 'Origin: https://app.example' -D - http://127.0.0.1:8080/big -o /dev/null
///     python3 -m websockets ws://127.0.0.1:8080/echo
@main
struct VaporExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8080

        // Vapor parses its own command line: hand it none of ours.
        let app = try await Application.make(Environment(name: "development", arguments: ["vapor"]))
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = port

        // Five lines: one Strata stack, one Vapor middleware, one task per request.
        app.middleware.use(
            StrataVaporMiddleware(
                try MiddlewareStack(VaporContext.self) {
                    try StrataCORS.CORSMiddleware<VaporContext>(
                        configuration: .init(allowedOrigins: ["https://app.example"]))
                    try ResponseCompressionMiddleware<VaporContext>()
                }))

        app.get { _ in "Hello from Vapor, through Strata middlewares\n" }
        app.get("big") { _ in
            Response(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"], body: .init(buffer: bigPage))
        }
        app.get("events") { _ in
            // Server-sent events from a Vapor stream of unknown length: Vapor does not let a
            // middleware read such a stream, so it passes through uncompressed (see
            // Docs/Adapters.md); each event still arrives at once.
            Response(
                status: .ok, headers: ["Content-Type": "text/event-stream"],
                body: .init(managedAsyncStream: { writer in
                    for event in 1...5 {
                        if event > 1 { try await Task.sleep(for: .seconds(1)) }
                        try await writer.write(.buffer(ByteBuffer(string: "data: {\"event\": \(event)}\n\n")))
                    }
                }))
        }
        // A Strata WebSocket route inside Vapor: the 101 and the connection go through Vapor's
        // upgrader.
        var webSocket = WebSocketConfiguration()
        webSocket.originPolicy = try .allowing(["https://app.example"])
        webSocket.compression = PerMessageDeflate()
        let echo = try WebSocketEndpoint(configuration: webSocket)
        app.get("echo") { req in
            try await req.strataResponse { request, context in
                echo.upgrade(request, context: context) { socket in
                    for try await message in socket.messages { try await socket.send(message) }
                }
            }
        }
        try await app.execute()
        try await app.asyncShutdown()
    }
}

/// A deterministic ~100 KiB HTML page with JSON-like rows.
let bigPage: ByteBuffer = {
    var text = "<!doctype html><html><head><title>Strata on Vapor</title></head><body><pre>\n"
    var row = 0
    while text.utf8.count < 100 * 1024 {
        text += "{\"id\": \(row), \"name\": \"item-\(row % 97)\", \"tags\": [\"alpha\", \"beta\"]}\n"
        row += 1
    }
    return ByteBuffer(string: text + "</pre></body></html>\n")
}()
