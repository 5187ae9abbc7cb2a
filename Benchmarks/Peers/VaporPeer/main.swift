import HTTPTypes
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Strata
import StrataCORS
import StrataCompression
import StrataVapor
import Vapor

// Vapor 4 for scripts/bench-adapters.sh, in one of four modes:
//   --mode cors-native   Vapor's own CORSMiddleware
//   --mode cors-strata   StrataCORS through StrataVapor
//   --mode gzip-native   Vapor's built-in response compression (NIO's HTTPResponseCompressor)
//   --mode gzip-strata   StrataCompression through StrataVapor
//   --mode async-native / noop-strata / convert-only   the floors (see scripts/bench-adapters.sh)
//   --mode sessions      Vapor's SessionsMiddleware with its memory driver, for
//                        scripts/bench-sessions.sh: GET /count reads the session's counter and
//                        writes it back plus one; GET /plain never touches the session
// Both CORS modes allow one origin; both gzip modes compress at zlib's default level 6.
// Routes: GET / ("Hello, World!") and GET /big (a deterministic ~100 KiB text page).

let arguments = CommandLine.arguments
let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8085
let mode = arguments.firstIndex(of: "--mode").map { arguments[$0 + 1] } ?? "cors-native"
let origin = "https://app.example"
// `--global-executor`: the adapter's task on Swift's global executor instead of the event loop.
var adapter = VaporAdapterConfiguration()
adapter.runsOnEventLoop = !arguments.contains("--global-executor")

// Vapor reads its own command line: give it none of ours.
let app = try await Application.make(Environment(name: "production", arguments: ["vapor"]))
app.logger.logLevel = .warning
app.http.server.configuration.hostname = "127.0.0.1"
app.http.server.configuration.port = port
// The same middlewares in every mode but the one measured: no per-request route logging.
app.middleware = Middlewares()
app.middleware.use(ErrorMiddleware.default(environment: app.environment))

switch mode {
case "cors-native":
    app.middleware.use(
        Vapor.CORSMiddleware(
            configuration: .init(
                allowedOrigin: .any([origin]), allowedMethods: [.GET, .POST, .HEAD],
                allowedHeaders: [.accept, .authorization, .contentType])))
case "cors-strata":
    var configuration = CORSConfiguration(allowedOrigins: [origin])
    configuration.allowedMethods = ["GET", "POST", "HEAD"]
    configuration.allowedRequestHeaders = ["Accept", "Authorization", "Content-Type"]
    app.middleware.use(
        StrataVaporMiddleware(
            try StrataCORS.CORSMiddleware<VaporContext>(configuration: configuration), configuration: adapter))
case "gzip-native":
    app.http.server.configuration.responseCompression = .enabled
case "gzip-strata":
    // zlib against Vapor's zlib: the benchmark package builds Strata with the Libdeflate trait,
    // whose whole-body path is compared with nginx in bench-compression.sh instead.
    var compression = CompressionConfiguration()
    compression.libdeflateMaximumSize = 0
    app.middleware.use(
        StrataVaporMiddleware(
            try ResponseCompressionMiddleware<VaporContext>(configuration: compression), configuration: adapter))
case "async-native":
    // The floor of any async middleware in Vapor: one that only calls the next responder.
    app.middleware.use(PassThrough())
case "convert-only":
    // The conversions alone: a future-based middleware (no task) that converts the request head
    // and the response fields to swift-http-types and back, as the adapter must, and adds the
    // CORS header without any check. What a task-free adapter could at best reach.
    app.middleware.use(ConvertOnly())
case "noop-strata":
    // The adapter's own cost: a Strata middleware that only calls next.
    app.middleware.use(StrataVaporMiddleware(StrataPassThrough(), configuration: adapter))
case "sessions":
    app.sessions.use(.memory)
    app.middleware.use(app.sessions.middleware)
    app.get("count") { request -> String in
        let count = (request.session.data["count"].flatMap(Int.init) ?? 0) + 1
        request.session.data["count"] = "\(count)"
        return "\(count)"
    }
    app.get("plain") { _ in "plain" }
default:
    fatalError("unknown --mode \(mode)")
}

struct PassThrough: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        try await next.respond(to: request)
    }
}

struct ConvertOnly: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        guard
            let head = try? HTTPRequest(
                HTTPRequestHead(
                    version: request.version, method: request.method, uri: request.url.string, headers: request.headers),
                secure: false, splitCookie: false)
        else { return request.eventLoop.makeSucceededFuture(Response(status: .badRequest)) }
        return next.respond(to: request).map { response in
            var fields = HTTPFields(response.headers, splitCookie: false)
            if let origin = head.headerFields[.origin] {
                fields[.accessControlAllowOrigin] = origin; fields[.vary] = "Origin"
            }
            response.headers = HTTPHeaders(fields)
            return response
        }
    }
}

struct StrataPassThrough: HTTPMiddleware {
    func handle(
        _ request: ServerRequest, context: VaporContext,
        next: (ServerRequest, VaporContext) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await next(request, context)
    }
}

let bigPage: ByteBuffer = {
    var text = "<!doctype html><html><head><title>Strata on Vapor</title></head><body><pre>\n"
    var row = 0
    while text.utf8.count < 100 * 1024 {
        text += "{\"id\": \(row), \"name\": \"item-\(row % 97)\", \"tags\": [\"alpha\", \"beta\"]}\n"
        row += 1
    }
    return ByteBuffer(string: text + "</pre></body></html>\n")
}()
app.get { _ in "Hello, World!" }
app.get("big") { _ in
    Response(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"], body: .init(buffer: bigPage))
}
try await app.execute()
