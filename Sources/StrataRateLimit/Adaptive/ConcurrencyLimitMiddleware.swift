public import CoreMetrics
import HTTPTypes
import Logging
public import Strata

/// Sheds load before it reaches the handler: when as many requests are in flight as the
/// ``AdaptiveConcurrencyLimiter`` allows, the next one gets `503` with `Retry-After`.
///
/// Use it alone, or inside a ``RateLimitMiddleware`` (quotas first, so a client over its quota
/// does not take a slot):
///
/// ```swift
/// let shedding = try ConcurrencyLimitMiddleware<BasicContext>()
/// let stack = MiddlewareStack(BasicContext.self) { quotas; shedding }
/// ```
public struct ConcurrencyLimitMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// The limiter deciding.
    public let limiter: AdaptiveConcurrencyLimiter
    /// Requests this returns `true` for are never shed (health checks).
    public let skip: (@Sendable (ServerRequest, Context) -> Bool)?
    /// `Retry-After` on a shed request, in seconds.
    public let retryAfterSeconds: Int
    private let shed: Counter
    private let limitGauge: Gauge

    /// Creates the middleware.
    ///
    /// - Parameters:
    ///   - limiter: The limiter (default: Gradient2 with Netflix's defaults).
    ///   - retryAfterSeconds: `Retry-After` on a shed request.
    ///   - skip: Requests never shed.
    ///   - metricsFactory: Metrics go here (default: the bootstrapped factory).
    public init(
        limiter: AdaptiveConcurrencyLimiter? = nil,
        retryAfterSeconds: Int = 1,
        skip: (@Sendable (ServerRequest, Context) -> Bool)? = nil,
        metricsFactory: (any MetricsFactory)? = nil
    ) throws(RateLimitConfigurationError) {
        if retryAfterSeconds < 1 {
            throw RateLimitConfigurationError(problems: ["retryAfterSeconds must be at least 1"])
        }
        if let limiter { self.limiter = limiter } else { self.limiter = try AdaptiveConcurrencyLimiter() }
        self.retryAfterSeconds = retryAfterSeconds
        self.skip = skip
        if let metricsFactory {
            self.shed = Counter(label: "strata_ratelimit_shed_total", factory: metricsFactory)
            self.limitGauge = Gauge(label: "strata_ratelimit_concurrency_limit", factory: metricsFactory)
        } else {
            self.shed = Counter(label: "strata_ratelimit_shed_total")
            self.limitGauge = Gauge(label: "strata_ratelimit_concurrency_limit")
        }
    }

    public func handle(
        _ request: ServerRequest, context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        if let skip, skip(request, context) { return try await next(request, context) }
        guard self.limiter.tryAcquire() else {
            self.shed.increment()
            context.logger.debug("shed: too many requests in flight", metadata: ["limit": "\(self.limiter.limit)"])
            return ServerResponse(
                status: .serviceUnavailable,
                headerFields: [
                    .retryAfter: String(self.retryAfterSeconds), .contentType: "application/problem+json",
                    .cacheControl: "no-store",
                ],
                body: .init(
                    string:
                        "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"The server is at its concurrency limit; retry in \(self.retryAfterSeconds) s.\"}\n"
                ))
        }
        let started = ContinuousClock.now
        defer {
            let now = ContinuousClock.now
            self.limiter.release(latency: now - started, at: now)
            self.limitGauge.record(self.limiter.limit)
        }
        return try await next(request, context)
    }
}
