import Benchmark
import HTTPTypes
import Logging
import NIOCore
import Strata
@_spi(Benchmarks) import StrataCache
import StrataTesting

/// The HTTP cache's hot paths: the lookup and freshness decision of a hit alone, a whole hit
/// through the responder (answer built, body collected), and a miss stored in the memory store.
func cacheBenchmarks() {
    let configuration = Benchmark.Configuration(
        metrics: [.instructions, .mallocCountTotal, .wallClock, .throughput], warmupIterations: 1000,
        scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 1000)
    var request = HTTPRequest(method: .get, scheme: "http", authority: "shop.example", path: "/products/42?ref=home")
    request.headerFields = [
        .userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        .accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        .acceptEncoding: "gzip, deflate, br",
    ]
    let originFields: HTTPFields = [
        .server: "nginx/1.22.1", .date: HTTPDate.format(secondsSince1970: SystemWallClock().now().secondsSince1970),
        .contentType: "text/html; charset=utf-8", .lastModified: "Sun, 06 Dec 2026 08:00:00 GMT",
        .eTag: "\"6b1519b0-d\"", .cacheControl: "public, max-age=3600",
    ]
    let body = ByteBuffer(string: "Hello, World!")
    let origin = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(status: .ok, headerFields: originFields, body: ResponseBody(buffer: body))
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let context = BasicContext(source: ContextSource(logger: logger))

    Benchmark("Cache: hit lookup and freshness decision", configuration: configuration) { benchmark in
        let cache = try HTTPCache()
        _ = try await cache.responder(origin: origin).respond(to: ServerRequest(head: request), context: context)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await cache.freshLookup(request))
        }
    }

    Benchmark("Cache: hit through the responder", configuration: configuration) { benchmark in
        let cache = try HTTPCache()
        let responder = cache.responder(origin: origin)
        _ = try await responder.respond(to: ServerRequest(head: request), context: context)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await responder.respond(to: ServerRequest(head: request), context: context))
        }
    }

    /// Misses, each for a URL not stored yet, stored in a memory store that never fills;
    /// `take` is what the client does with each response.
    func missBenchmark(
        _ name: String, origin: ClosureResponder<BasicContext>,
        take: @escaping @Sendable (ServerResponse) async throws -> Void
    ) {
        Benchmark(name, configuration: configuration) { benchmark in
            let cache = try HTTPCache(store: MemoryCacheStore(maximumBytes: 1 << 30))
            let responder = cache.responder(origin: origin)
            let heads = benchmark.scaledIterations.map { index in
                var head = request
                head.path = "/products/\(index)"
                return head
            }
            benchmark.startMeasurement()
            for head in heads {
                try await take(try await responder.respond(to: ServerRequest(head: head), context: context))
            }
        }
    }

    // As a reverse proxy answers: a streamed body, stored by the tee as it goes to the client.
    let streamingOrigin = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(
            status: .ok, headerFields: originFields,
            body: ResponseBody(contentLength: body.readableBytes) { writer in try await writer.write(body) })
    }
    missBenchmark("Cache: streamed miss stored through the tee", origin: streamingOrigin) { response in
        var sink: any ResponseBodyWriter = BenchmarkSink()
        try await response.body.write(to: &sink)
    }
    missBenchmark("Cache: miss stored in the memory store", origin: origin) { response in blackHole(response) }
}

/// Takes a body and keeps nothing: the client side of a streamed miss.
struct BenchmarkSink: ResponseBodyWriter {
    func write(_ buffer: ByteBuffer) async throws { blackHole(buffer) }
    func finish(trailers: HTTPFields?) async throws {}
}
