import Benchmark
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataCORS

/// Instructions and mallocs of the CORS middleware's three paths, each against the bare
/// responder measured the same way (`Responder alone` in MiddlewareStackBenchmarks).
func corsBenchmarks() {
    let hello = ByteBuffer(string: "Hello, World!")
    let responder = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: ResponseBody(buffer: hello))
    }
    var configuration = CORSConfiguration(allowedOrigins: ["https://app.example.com", "https://*.example.org"])
    configuration.allowedMethods = ["PUT"]
    configuration.allowedRequestHeaders = ["Content-Type", "X-Custom"]
    configuration.exposedHeaders = ["X-Total"]
    configuration.maxAge = 600
    guard let cors = try? CORSMiddleware<BasicContext>(configuration: configuration) else {
        fatalError("the benchmark's CORS configuration is valid")
    }
    let stack = cors.wrapping(responder)
    let source = ContextSource(logger: Logger(label: "bench"))

    let noOrigin = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/")
    Benchmark("CORS: request without Origin") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await stack.respond(to: ServerRequest(head: noOrigin), context: BasicContext(source: source)))
        }
    }

    var allowed = noOrigin
    allowed.headerFields[.origin] = "https://app.example.com"
    Benchmark("CORS: allowed actual request") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await stack.respond(to: ServerRequest(head: allowed), context: BasicContext(source: source)))
        }
    }

    var preflight = HTTPRequest(method: .options, scheme: "http", authority: "localhost", path: "/")
    preflight.headerFields[.origin] = "https://a.example.org"
    preflight.headerFields[.accessControlRequestMethod] = "PUT"
    preflight.headerFields[.accessControlRequestHeaders] = "content-type,x-custom"
    Benchmark("CORS: preflight") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                try await stack.respond(to: ServerRequest(head: preflight), context: BasicContext(source: source)))
        }
    }
}
