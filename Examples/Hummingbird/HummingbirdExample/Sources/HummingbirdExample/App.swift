import Hummingbird
import Strata
import StrataCORS
import StrataCompression
import StrataHummingbird

/// Hummingbird 2 serving the same routes as Strata's Compression example, behind StrataCORS and
/// StrataCompression run as one Hummingbird middleware.
///
///     cd Examples/Hummingbird/HummingbirdExample && swift run HummingbirdExample --port 8080
///     curl --compressed -H 'Origin: https://app.example' -D - http://127.0.0.1:8080/big -o /dev/null
@main
struct HummingbirdExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8080

        typealias Context = HummingbirdContext<BasicRequestContext>
        let router = Router()
        // Added before the routes: Hummingbird applies a middleware to routes added after it.
        router.add(
            middleware: StrataMiddleware(
                try MiddlewareStack(Context.self) {
                    try CORSMiddleware<Context>(configuration: .init(allowedOrigins: ["https://app.example"]))
                    try ResponseCompressionMiddleware<Context>()
                }))
        router.get("/") { _, _ in "Hello from Hummingbird, through Strata middlewares\n" }
        router.get("/big") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: bigPage))
        }
        router.get("/events") { _, _ in
            // Server-sent events: StrataCompression flushes each one through gzip at once.
            Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    for event in 1...5 {
                        if event > 1 { try await Task.sleep(for: .seconds(1)) }
                        try await writer.write(ByteBuffer(string: "data: {\"event\": \(event)}\n\n"))
                    }
                    try await writer.finish(nil)
                })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}

/// A deterministic ~100 KiB HTML page with JSON-like rows.
let bigPage: ByteBuffer = {
    var text = "<!doctype html><html><head><title>Strata on Hummingbird</title></head><body><pre>\n"
    var row = 0
    while text.utf8.count < 100 * 1024 {
        text += "{\"id\": \(row), \"name\": \"item-\(row % 97)\", \"tags\": [\"alpha\", \"beta\"]}\n"
        row += 1
    }
    return ByteBuffer(string: text + "</pre></body></html>\n")
}()
