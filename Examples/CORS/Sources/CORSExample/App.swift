import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataCORS
import StrataServer
import Synchronization
import UnixSignals

/// The CORS example: an API with CORS, and a page that calls it from another origin.
///
///     swift run CORSExample --port 8080 --allow-origin http://localhost:8080 --credentials --expose-header X-Request-Count
///
/// Open http://localhost:8080/ : the page calls the API at http://127.0.0.1:8080, which is
/// another origin (another host name), so every call is cross-origin.
@main
struct CORSExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        func values(_ name: String) -> [String] {
            arguments.indices.filter { arguments[$0] == name && $0 + 1 < arguments.count }.map { arguments[$0 + 1] }
        }
        let port =
            values("--port").last.flatMap(Int.init) ?? ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init)
            ?? 8080
        var configuration = CORSConfiguration(allowedOrigins: values("--allow-origin"))
        if configuration.allowedOrigins.isEmpty {
            configuration.allowedOrigins = ["http://localhost:\(port)"]
        }
        configuration.allowsCredentials = arguments.contains("--credentials")
        configuration.exposedHeaders = values("--expose-header")
        configuration.debug = arguments.contains("--debug")
        var logger = Logger(label: "cors-example")
        logger.logLevel = configuration.debug ? .debug : .info
        let responder: any HTTPResponder<BasicContext>
        do {
            responder = try buildResponder(configuration: configuration)
        } catch {
            print(error)
            exit(2)
        }
        logger.info(
            "allowed origins: \(configuration.allowedOrigins.joined(separator: " ")); open http://localhost:\(port)/")
        let server = HTTPServer(
            responder: AnyResponder(responder),
            configuration: try HTTPServerConfiguration(host: values("--host").last ?? "127.0.0.1", port: port),
            logger: logger
        )
        try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// Wraps a responder of any type for the example's command-line set-up.
struct AnyResponder: HTTPResponder {
    let base: any HTTPResponder<BasicContext>
    init(_ base: any HTTPResponder<BasicContext>) { self.base = base }
    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        try await self.base.respond(to: request, context: context)
    }
}

/// The example's routes behind the CORS middleware; tests reuse it.
///
/// - `GET /`: the page (served to every origin; it is not an API response).
/// - `GET /api/data`: JSON, with `X-Request-Count` (expose it to let scripts read it) and
///   `X-Secret` (never exposed).
/// - `PUT /api/data`: stores a JSON body of up to 4 KiB; scripts send it with `X-Custom`, so
///   browsers preflight it.
func buildResponder(configuration: CORSConfiguration) throws(CORSConfigurationError) -> some HTTPResponder<BasicContext>
{
    var configuration = configuration
    configuration.allowedMethods = Array(Set(configuration.allowedMethods + ["PUT"]))
    configuration.allowedRequestHeaders = Array(
        Set(configuration.allowedRequestHeaders + ["Content-Type", "X-Custom"]))
    let cors = try CORSMiddleware<BasicContext>(configuration: configuration)
    let counter = Atomic<Int>(0)
    let stored = Mutex<String>("{\"message\":\"hello from the API\"}")
    let api = Router<BasicContext>()
    api.get("/api/data") { request, _ in
        let count = counter.add(1, ordering: .relaxed).newValue
        var fields: HTTPFields = [.contentType: "application/json"]
        fields[HTTPField.Name("X-Request-Count")!] = String(count)
        fields[HTTPField.Name("X-Secret")!] = "not for scripts"
        let cookie = request.headerFields[.cookie] != nil
        let body = "{\"data\":\(stored.withLock { $0 }),\"count\":\(count),\"cookie\":\(cookie)}"
        return ServerResponse(status: .ok, headerFields: fields, body: .init(string: body))
    }
    api.put("/api/data") { request, _ in
        let body = try await request.body.collect(upTo: 4096)
        let text = String(buffer: body)
        guard (try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil else {
            throw HTTPError(.badRequest, message: "send a JSON body")
        }
        stored.withLock { $0 = text }
        return ServerResponse(status: .ok, headerFields: [.contentType: "application/json"], body: .init(string: text))
    }
    api.get("/") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"], body: .init(string: examplePage))
    }
    return MiddlewareStack(BasicContext.self) { cors }.wrapping(api)
}
