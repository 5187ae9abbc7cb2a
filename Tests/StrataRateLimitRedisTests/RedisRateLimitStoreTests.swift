import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataRateLimit
import StrataRateLimitRedis
import StrataRedis
import StrataRedisTestSupport
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// The Redis store against the real server and cluster that `scripts/test.sh` starts, two
/// example processes sharing one Redis, and private servers that are killed or paused.
@Suite struct RedisRateLimitStoreTests {
    static var logger: Logger { RedisTestEnvironment.logger("strata.test.ratelimit.redis") }

    static func variable(_ name: String) throws -> String { try RedisTestEnvironment.variable(name) }

    static func configuration(url: String? = nil, cluster: Bool = false) throws -> RedisConfiguration {
        try RedisTestEnvironment.configuration(url: url, cluster: cluster)
    }

    /// A client, shut down after `body`.
    static func withClient<Result>(
        _ configuration: RedisConfiguration, _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        try await RedisTestEnvironment.withClient(configuration, logger: Self.logger, body)
    }

    static var prefix: String { "test:ratelimit:\(UUID().uuidString.prefix(8))" }

    // MARK: The script

    /// The same requests, at the same instants, through the script and the memory store: the
    /// same decisions, remaining units and waits (to the microsecond the script counts in).
    @Test(arguments: [false, true]) func theScriptDecidesAsTheMemoryStoreDoes(cluster: Bool) async throws {
        let clock = ManualClock(now: Timestamp(secondsSince1970: 1_700_000_040))
        let memory = MemoryRateLimitStore(clock: clock)
        try await Self.withClient(try Self.configuration(cluster: cluster)) { client in
            let redis = RedisRateLimitStore(client: client, keyPrefix: Self.prefix, timeSource: .caller(clock))
            let checks = [
                QuotaCheck(limits: try .gcra("burst", limit: 5, per: .seconds(1), burst: 10), key: RateLimitKey("a")),
                QuotaCheck(limits: try .slidingWindow("minute", limit: 30, per: .seconds(60)), key: RateLimitKey("a")),
                QuotaCheck(
                    limits: try .gcra("trial", limit: 8, per: .seconds(60)), key: RateLimitKey("a"), shadow: true),
            ]
            let steps: [(advance: Duration, cost: Int)] =
                Array(repeating: (.zero, 1), count: 12) + [(.milliseconds(150), 1), (.milliseconds(50), 1), (.zero, 5)]
                + Array(repeating: (.milliseconds(900), 2), count: 20) + [
                    (.seconds(30), 1), (.seconds(61), 3), (.zero, 11),
                ]
            for (number, step) in steps.enumerated() {
                clock.advance(by: step.advance)
                let fromMemory = try await memory.acquire(checks, cost: step.cost)
                let fromRedis = try await redis.acquire(checks, cost: step.cost)
                #expect(fromRedis.map(\.allowed) == fromMemory.map(\.allowed), "step \(number)")
                #expect(fromRedis.map(\.remaining) == fromMemory.map(\.remaining), "step \(number)")
                for (left, right) in zip(fromRedis, fromMemory) {
                    #expect(abs(left.retryAfter - right.retryAfter) < 2_000, "step \(number)")
                    #expect(abs(left.reset - right.reset) < 2_000, "step \(number)")
                }
            }
            // Peek and reset.
            let peeked = try await redis.peek([checks[0]], cost: 1)
            #expect(peeked == (try await memory.peek([checks[0]], cost: 1)))
            try await redis.reset(checks[0].limits, key: RateLimitKey("a"))
            #expect(try await redis.peek([checks[0]], cost: 1)[0].remaining == 9)
        }
    }

    @Test func redisTimeIsTheDefaultClock() async throws {
        try await Self.withClient(try Self.configuration()) { client in
            let store = RedisRateLimitStore(client: client, keyPrefix: Self.prefix)
            let check = QuotaCheck(limits: try .gcra("hour", limit: 1, per: .seconds(3600)), key: RateLimitKey("a"))
            #expect(try await store.acquire([check], cost: 1)[0].allowed)
            let refused = try await store.acquire([check], cost: 1)[0]
            #expect(!refused.allowed)
            // Nearly the whole hour, by the server's clock.
            #expect(refused.retryAfter > 3_590_000_000_000 && refused.retryAfter <= 3_600_000_000_000)
            #expect(try await client.ttl(store.redisKey(check.limits, key: check.key)) > 3_500)
        }
    }

    @Test func onAClusterChecksOnDifferentSlotsAreGivenBackWhenOneRefuses() async throws {
        try await Self.withClient(try Self.configuration(cluster: true)) { client in
            let store = RedisRateLimitStore(client: client, keyPrefix: Self.prefix)
            let address = QuotaCheck(
                limits: try .gcra("address", limit: 10, per: .seconds(3600)), key: RateLimitKey("203.0.113.7"))
            let user = QuotaCheck(limits: try .gcra("user", limit: 1, per: .seconds(3600)), key: RateLimitKey("alice"))
            #expect(
                store.redisKey(address.limits, key: address.key).slot != store.redisKey(user.limits, key: user.key).slot
            )
            var admitted = 0
            for _ in 0..<4 where try await store.acquire([address, user], cost: 1).allSatisfy(\.allowed) {
                admitted += 1
            }
            #expect(admitted == 1)
            #expect(try await store.peek([address], cost: 1)[0].remaining == 8)
        }
    }

    // MARK: Exactness across processes

    /// Two example processes behind one Redis, 1,000 requests from one client split between
    /// them, 100 at a time (Python httpx), a quota of 100: exactly 100 pass.
    @Test(arguments: [false, true]) func twoInstancesAdmitExactlyTheLimitTogether(cluster: Bool) async throws {
        let url = cluster ? try Self.variable("STRATA_REDIS_CLUSTER") : try Self.variable("STRATA_REDIS_URL")
        try await Self.withClient(try Self.configuration(cluster: cluster)) { client in
            _ = try await client.delete(RedisKey("strata:ratelimit:example:{ip:127.0.0.1}:daily"))
        }
        let first = try await ExampleProcess(
            "RateLimitExample", arguments: ["--redis-url", url, "--daily-quota", "100"])
        let second = try await ExampleProcess(
            "RateLimitExample", arguments: ["--redis-url", url, "--daily-quota", "100"])
        defer {
            first.stop()
            second.stop()
        }
        let result = try await concurrentRequests(ports: [first.port, second.port], path: "/api", count: 1000)
        #expect(result == ConcurrentRequestsResult(statuses: [200: 100, 429: 900], withRateLimitField: 1000))
    }

    // MARK: Failures

    static func middleware(
        _ store: RedisRateLimitStore, failureMode: RateLimitFailureMode, logger: Logger
    ) throws -> TestClient<some HTTPResponder<BasicContext>> {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.failureMode = failureMode
        let router = Router<BasicContext>()
        router.get("/") { _, _ in ServerResponse(status: .ok, body: .init(string: "ok")) }
        let limiter = try RateLimitMiddleware<BasicContext>(
            policies: [QuotaPolicy(try .gcra("burst", limit: 1000, per: .seconds(60)))], store: store,
            configuration: configuration, logger: logger)
        var client = TestClient(responder: MiddlewareStack(BasicContext.self) { limiter }.wrapping(router))
        client.logger = logger
        return client
    }

    @Test(arguments: [RateLimitFailureMode.open, .closed])
    func aRedisKilledMidTestFailsAsConfigured(mode: RateLimitFailureMode) async throws {
        try await RedisServerProcess.with { server in
            var configuration = try Self.configuration(url: server.url)
            configuration.connectTimeout = .milliseconds(500)
            configuration.commandTimeout = .seconds(2)
            configuration.acquireTimeout = .seconds(2)
            let recorder = LogRecorder()
            try await Self.withClient(configuration) { client in
                let store = RedisRateLimitStore(client: client, keyPrefix: Self.prefix, timeout: .seconds(5))
                let http = try Self.middleware(store, failureMode: mode, logger: recorder.logger(level: .warning))
                let before = try await http.execute(.get, "/")
                #expect(before.status == .ok)
                #expect(before.headerFields[RateLimitHeaders.rateLimitName] == "\"burst\";r=999;t=1")
                try await server.kill()
                let after = try await http.execute(.get, "/")
                switch mode {
                case .open:
                    #expect(after.status == .ok)
                    #expect(after.headerFields[RateLimitHeaders.rateLimitName] == nil)
                case .closed:
                    #expect(after.status == .serviceUnavailable)
                    #expect(after.headerFields[.retryAfter] == "1")
                }
                #expect(recorder.messages(atLeast: .warning).contains { $0.contains("rate-limit store failed") })
                // Redis back: decisions resume.
                try await server.start()
                let back = await eventually(within: .seconds(60)) {
                    (try? await http.execute(.get, "/"))?.headerFields[RateLimitHeaders.rateLimitName] != nil
                }
                #expect(back)
            }
        }
    }

    @Test(arguments: [RateLimitFailureMode.open, .closed])
    func aRedisThatStopsAnsweringTimesOutAsConfigured(mode: RateLimitFailureMode) async throws {
        try await RedisServerProcess.with { server in
            var configuration = try Self.configuration(url: server.url)
            configuration.commandTimeout = .seconds(30)
            let recorder = LogRecorder()
            try await Self.withClient(configuration) { client in
                let store = RedisRateLimitStore(client: client, keyPrefix: Self.prefix, timeout: .milliseconds(300))
                let http = try Self.middleware(store, failureMode: mode, logger: recorder.logger(level: .warning))
                #expect(try await http.execute(.get, "/").status == .ok)
                server.pause()
                defer { server.resume() }
                let started = ContinuousClock.now
                let response = try await http.execute(.get, "/")
                // Answered long before the client's own 30 s command timeout.
                #expect(ContinuousClock.now - started < .seconds(25))
                #expect(response.status == (mode == .open ? .ok : .serviceUnavailable))
                #expect(recorder.messages(atLeast: .warning).contains { $0.contains("rate-limit store failed") })
                do {
                    _ = try await store.acquire(
                        [QuotaCheck(limits: try .gcra("x", limit: 1, per: .seconds(1)), key: RateLimitKey("a"))],
                        cost: 1)
                    Issue.record("a paused Redis answered")
                } catch let error as RateLimitStoreError {
                    #expect(error == .timedOut(.milliseconds(300)))
                }
            }
        }
    }
}
