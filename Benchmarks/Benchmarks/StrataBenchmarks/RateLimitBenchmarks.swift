import Benchmark
import Dispatch
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataRateLimit

/// A quota decision in the memory store for a key that exists (clock read and key lookup
/// included), from one thread and from two; and the whole middleware on an allowed request.
func rateLimitBenchmarks() {
    // A quota no benchmark exhausts: a billion a second.
    guard let limits = try? QuotaLimits.gcra("bench", limit: 1_000_000_000, per: .seconds(1)) else {
        fatalError("the benchmark's quota is valid")
    }
    let clock = SystemWallClock()
    let hotKey = RateLimitKey(address: IPAddress("203.0.113.7")!)
    let manyKeys = (0..<100_000).map { index in
        RateLimitKey(address: IPAddress("10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)")!)
    }
    let decisions = Benchmark.Configuration(
        metrics: [.instructions, .mallocCountTotal, .wallClock, .throughput], warmupIterations: 1000,
        scalingFactor: .mega, maxDuration: .seconds(3), maxIterations: 100)

    Benchmark("RateLimit: decision, existing key, 1 thread", configuration: decisions) { benchmark in
        let store = MemoryRateLimitStore()
        _ = store.acquire(limits, key: hotKey, now: clock.now())
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(store.acquire(limits, key: hotKey, now: clock.now()))
        }
    }
    // Two threads of their own (GCD's), not tasks: the harness keeps one of the two threads of
    // Swift's cooperative pool, so two tasks would take turns on the other.
    Benchmark("RateLimit: decision, one hot key, 2 threads", configuration: decisions) { benchmark in
        let store = MemoryRateLimitStore()
        _ = store.acquire(limits, key: hotKey, now: clock.now())
        let half = benchmark.scaledIterations.count / 2
        benchmark.startMeasurement()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0..<half { blackHole(store.acquire(limits, key: hotKey, now: clock.now())) }
        }
    }
    Benchmark("RateLimit: decision, 100k keys, 1 thread", configuration: decisions) { benchmark in
        let store = MemoryRateLimitStore(maxKeys: 200_000)
        for key in manyKeys { _ = store.acquire(limits, key: key, now: clock.now()) }
        var index = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(store.acquire(limits, key: manyKeys[index], now: clock.now()))
            index = index == manyKeys.count - 1 ? 0 : index + 1
        }
    }
    Benchmark("RateLimit: decision, 100k keys, 2 threads", configuration: decisions) { benchmark in
        let store = MemoryRateLimitStore(maxKeys: 200_000)
        for key in manyKeys { _ = store.acquire(limits, key: key, now: clock.now()) }
        let half = benchmark.scaledIterations.count / 2
        benchmark.startMeasurement()
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            var index = thread * 50_000
            for _ in 0..<half {
                blackHole(store.acquire(limits, key: manyKeys[index], now: clock.now()))
                index = index == manyKeys.count - 1 ? 0 : index + 1
            }
        }
    }

    let ok = ClosureResponder<BasicContext> { _, _ in ServerResponse(status: .ok, body: .init(string: "ok")) }
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let source = ContextSource(logger: logger, remoteAddress: try? SocketAddress(ipAddress: "203.0.113.7", port: 4000))
    let head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/")
    for fields in [true, false] {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.headersOnAllowedResponses = fields
        guard
            let middleware = try? RateLimitMiddleware<BasicContext>(
                policies: [QuotaPolicy(limits)], store: MemoryRateLimitStore(), configuration: configuration,
                logger: logger)
        else { fatalError("the benchmark's policy is valid") }
        Benchmark("RateLimit: middleware, allowed request, fields \(fields ? "on" : "off")") { benchmark in
            let stack = middleware.wrapping(ok)
            for _ in benchmark.scaledIterations {
                blackHole(try await stack.respond(to: ServerRequest(head: head), context: BasicContext(source: source)))
            }
        }
    }
}
