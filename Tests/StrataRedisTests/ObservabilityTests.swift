import InMemoryTracing
import MetricsTestKit
import NIOCore
import StrataRedis
import Testing
import Tracing

/// Metrics and spans, through injected backends.
@Suite struct ObservabilityTests {
    @Test func commandsAreCountedTimedAndTracedWithoutTheirValues() async throws {
        let metrics = TestMetrics()
        let tracer = InMemoryTracer()
        var configuration = try RedisConfiguration(url: try RedisTestEnvironment.standaloneURL())
        configuration.clientName = "strata-observed"
        let redis = RedisClient(
            configuration: configuration, logger: RedisTestEnvironment.logger, metricsFactory: metrics, tracer: tracer)
        let key = RedisKey(RedisTestEnvironment.uniquePrefix())
        try await redis.set(key, to: "secret-value")
        _ = try await redis.get(key)
        _ = try await redis.get(key)
        await #expect(throws: RedisServerError.self) { try await redis.send("NOSUCHCOMMAND") }
        try await redis.delete(key)
        await redis.shutdown()

        #expect(try metrics.expectCounter("strata_redis_commands_total", [("command", "GET")]).totalValue == 2)
        #expect(try metrics.expectCounter("strata_redis_commands_total", [("command", "SET")]).totalValue == 1)
        #expect(
            try metrics.expectTimer("strata_redis_command_duration_seconds", [("command", "GET")]).values.count == 2)
        #expect(try metrics.expectCounter("strata_redis_errors_total", [("kind", "server")]).totalValue == 1)

        let spans = tracer.finishedSpans
        #expect(spans.map(\.operationName) == ["SET", "GET", "GET", "NOSUCHCOMMAND", "DEL"])
        let get = try #require(spans.first { $0.operationName == "GET" })
        #expect(get.kind == .client)
        #expect(get.attributes["db.system.name"]?.toSpanAttribute() == "redis")
        #expect(get.attributes["db.operation.name"]?.toSpanAttribute() == "GET")
        #expect(get.attributes["server.address"]?.toSpanAttribute() == "127.0.0.1")
        // Never a value or a key in a span.
        let text = spans.map { "\($0.attributes)" }.joined()
        #expect(!text.contains("secret-value") && !text.contains(key.description))
        #expect(spans.first { $0.operationName == "NOSUCHCOMMAND" }?.errors.isEmpty == false)
    }
}
