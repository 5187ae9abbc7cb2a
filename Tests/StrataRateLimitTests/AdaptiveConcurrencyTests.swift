import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

@testable import RateLimitExample
@testable import StrataRateLimit

/// Gradient2 with injected latencies and instants, then live against a real slow handler.
@Suite struct AdaptiveConcurrencyTests {
    static func limiter() throws -> AdaptiveConcurrencyLimiter {
        var configuration = AdaptiveConcurrencyLimiter.Configuration()
        configuration.initialLimit = 40
        configuration.minimumLimit = 4
        configuration.maximumLimit = 200
        configuration.windowDuration = .seconds(1)
        configuration.samplesPerWindow = 10
        return try AdaptiveConcurrencyLimiter(configuration: configuration)
    }

    /// One window: the limiter full (every slot taken), then every request finishing with
    /// `latency`; returns the instant after it.
    static func window(
        _ limiter: AdaptiveConcurrencyLimiter, latency: Duration, at start: ContinuousClock.Instant
    ) -> ContinuousClock.Instant {
        var taken = 0
        while limiter.tryAcquire() { taken += 1 }
        for index in 0..<taken {
            limiter.release(latency: latency, at: start + .milliseconds(1000 * index / max(1, taken - 1)))
        }
        return start + .milliseconds(1001)
    }

    @Test func risingLatencyShrinksTheLimitAndRecoveryRaisesIt() throws {
        let limiter = try Self.limiter()
        var now = ContinuousClock.now
        // The normal: 10 ms. The limit holds or grows.
        for _ in 0..<20 { now = Self.window(limiter, latency: .milliseconds(10), at: now) }
        let settled = limiter.limit
        #expect(settled >= 40)
        // Latency rises fourfold under the same load: the limit falls, window after window.
        var previous = settled
        for _ in 0..<5 {
            now = Self.window(limiter, latency: .milliseconds(40), at: now)
            #expect(limiter.limit < previous)
            previous = limiter.limit
        }
        for _ in 0..<30 { now = Self.window(limiter, latency: .milliseconds(40), at: now) }
        let shrunk = limiter.limit
        #expect(shrunk < settled / 2)
        // At the limit, the next request is shed.
        var admitted = 0
        while limiter.tryAcquire() { admitted += 1 }
        #expect(admitted == shrunk)
        #expect(!limiter.tryAcquire())
        for _ in 0..<admitted { limiter.release(latency: .milliseconds(40), at: now) }
        // Latency back to normal: the limit climbs again.
        for _ in 0..<60 { now = Self.window(limiter, latency: .milliseconds(10), at: now) }
        #expect(limiter.limit > shrunk * 2)
    }

    @Test func anIdleServerDoesNotMoveTheLimit() throws {
        let limiter = try Self.limiter()
        var now = ContinuousClock.now
        // One request at a time, however slow: the server is not the bottleneck.
        for _ in 0..<200 {
            #expect(limiter.tryAcquire())
            now = now + .milliseconds(200)
            limiter.release(latency: .milliseconds(500), at: now)
        }
        #expect(limiter.limit == 40)
    }

    @Test func theConfigurationIsValidated() {
        var configuration = AdaptiveConcurrencyLimiter.Configuration()
        configuration.minimumLimit = 10
        configuration.initialLimit = 5
        #expect(throws: RateLimitConfigurationError.self) {
            try AdaptiveConcurrencyLimiter(configuration: configuration)
        }
    }

    /// The example's `/slow`: 2 workers of 40 ms. After a light load has set the normal
    /// latency, sixty clients in a closed loop make latency rise: the limit falls and requests
    /// are shed with 503 + Retry-After. With the work made faster, the limit climbs back.
    @Test func aRealSlowHandlerIsShedAndRecovers() async throws {
        var configuration = exampleAdaptiveConfiguration()
        configuration.initialLimit = 40
        configuration.minimumLimit = 2
        configuration.windowDuration = .milliseconds(100)
        configuration.samplesPerWindow = 5
        let limiter = try AdaptiveConcurrencyLimiter(configuration: configuration)
        let backend = SlowBackend(workers: 2, work: .milliseconds(40))
        var logger = Logger(label: "strata.test.adaptive")
        logger.logLevel = .critical
        let responder = try buildResponder(
            store: MemoryRateLimitStore(), limiter: limiter, backend: backend, logger: logger)
        try await withLiveServer(responder: responder, logger: logger) { port in
            let light = ClosedLoopLoad(port: port, clients: 2)
            // The normal, measured under a light load; it does not move the limit.
            _ = await eventually(within: .seconds(60)) { light.responses >= 40 }
            await light.stop()
            #expect(limiter.limit == 40)
            let heavy = ClosedLoopLoad(port: port, clients: 60)
            let fell = await eventually(within: .seconds(120)) { limiter.limit <= 20 && heavy.shed.count > 0 }
            #expect(fell, "limit \(limiter.limit), \(heavy.shed.count) shed")
            let low = limiter.limit
            // Faster work, still behind two workers, so the load keeps pressing on the limit
            // (a window under half the limit says nothing and moves nothing).
            backend.workDuration = .milliseconds(2)
            let rose = await eventually(within: .seconds(120)) {
                return limiter.limit > low * 2
            }
            await heavy.stop()
            #expect(rose, "limit stayed at \(limiter.limit) from \(low)")
            let response = try #require(heavy.shed.first)
            #expect(response.contains("Retry-After: 1\r\n"))
            #expect(response.contains("application/problem+json"))
        }
    }
}

/// Clients that each send `GET /slow` again as soon as the last one is answered.
final class ClosedLoopLoad: Sendable {
    final class Shared: Sendable {
        let running = Atomic<Bool>(true)
        let state = Mutex<(count: Int, shed: [String])>((0, []))
    }
    private let shared = Shared()
    private let task: Task<Void, Never>

    init(port: Int, clients: Int) {
        let shared = self.shared
        self.task = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        while shared.running.load(ordering: .relaxed) {
                            guard
                                let response = try? await RawHTTPClient.exchange(
                                    "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port,
                                    timeout: .seconds(60))
                            else { continue }
                            shared.state.withLock { state in
                                state.count += 1
                                if response.hasPrefix("HTTP/1.1 503"), state.shed.count < 100 {
                                    state.shed.append(response)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    var responses: Int { self.shared.state.withLock { $0.count } }
    var shed: [String] { self.shared.state.withLock { $0.shed } }

    func stop() async {
        self.shared.running.store(false, ordering: .relaxed)
        await self.task.value
    }
}
