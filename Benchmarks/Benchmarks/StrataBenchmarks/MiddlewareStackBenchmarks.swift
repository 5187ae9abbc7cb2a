import Benchmark
import HTTPTypes
import Logging
import NIOCore
import Strata

/// A middleware that only calls `next`: what a stack costs before any middleware does work.
struct PassThrough<Context: MiddlewareContext>: HTTPMiddleware {
    func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await next(request, context)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.instructions, .mallocCountTotal, .wallClock, .throughput],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    let hello = ByteBuffer(string: "Hello, World!")
    let responder = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: ResponseBody(buffer: hello))
    }
    let source = ContextSource(logger: Logger(label: "bench"))
    let head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/")

    Benchmark("Responder alone") { benchmark in
        for _ in benchmark.scaledIterations {
            let response = try await responder.respond(
                to: ServerRequest(head: head),
                context: BasicContext(source: source)
            )
            blackHole(response)
        }
    }

    let stack = MiddlewareStack(BasicContext.self) {
        PassThrough<BasicContext>()
        PassThrough<BasicContext>()
        PassThrough<BasicContext>()
        PassThrough<BasicContext>()
        PassThrough<BasicContext>()
    }.wrapping(responder)

    Benchmark("Five pass-through middlewares") { benchmark in
        for _ in benchmark.scaledIterations {
            let response = try await stack.respond(to: ServerRequest(head: head), context: BasicContext(source: source))
            blackHole(response)
        }
    }

    corsBenchmarks()
    sessionBenchmarks()
    rateLimitBenchmarks()
    compressionBenchmarks()
    webSocketBenchmarks()
    respParserBenchmarks()
    reverseProxyBenchmarks()
    cacheBenchmarks()
}
