public import CoreMetrics
public import Strata

/// One quota applied to requests: its numbers, whose requests it counts together, and whether
/// it only observes.
public struct QuotaPolicy<Context: MiddlewareContext>: Sendable {
    /// The quota.
    public var limits: QuotaLimits
    /// Whose requests count together.
    public var key: RateLimitKeySource<Context>
    /// **Shadow mode**: the policy is decided, its headers and metrics are emitted, and it never
    /// refuses; try a policy in production before enforcing it.
    public var shadow: Bool

    /// Creates a policy.
    public init(_ limits: QuotaLimits, key: RateLimitKeySource<Context> = .clientAddress(), shadow: Bool = false) {
        self.limits = limits
        self.key = key
        self.shadow = shadow
    }
}

/// What a store failure (Redis down, a timeout) does to requests.
public enum RateLimitFailureMode: Sendable, Hashable {
    /// Requests pass unlimited while the store fails (the default): the limiter protects
    /// capacity, and an outage of the store should not become an outage of the API.
    case open
    /// Requests are refused with `503` and `Retry-After: 1` while the store fails: for
    /// quotas that guard something worse than load (login attempts, paid calls).
    case closed
}

/// Why a request was refused: what a custom refusal response can show.
public struct RateLimitRefusal: Sendable {
    /// The policies that refused it.
    public var policies: [String]
    /// Whole seconds until it would pass (the `Retry-After` value).
    public var retryAfterSeconds: Int
}

/// How a ``RateLimitMiddleware`` keys, costs, skips, answers and reports.
public struct RateLimitConfiguration<Context: MiddlewareContext>: Sendable {
    /// The proxies whose forwarding header names the client; without them the socket peer is
    /// the client, and forwarding headers are never read.
    public var trustedProxies: TrustedProxies?
    /// Units a request costs (default 1). A cost of 0 spends nothing and still reports.
    public var cost: (@Sendable (ServerRequest, Context) -> Int)?
    /// Requests this returns `true` for are not limited at all (health checks, static files).
    public var skip: (@Sendable (ServerRequest, Context) -> Bool)?
    /// Units spent by a request whose response is below 400 are given back after the handler.
    public var skipSuccessfulResponses = false
    /// Units spent by a request whose response is 400 or more (or whose handler threw) are
    /// given back after the handler.
    public var skipFailedResponses = false
    /// Whether `RateLimit-Policy` and `RateLimit` are sent on allowed responses too (always on
    /// refusals).
    public var headersOnAllowedResponses = true
    /// Whether `X-RateLimit-Limit`, `-Remaining` and `-Reset` (of the policy with the least
    /// left) are sent as well, for older clients.
    public var legacyHeaders = false
    /// What a store failure does.
    public var failureMode = RateLimitFailureMode.open
    /// The 429 response; `Retry-After` and the rate-limit fields are added to it. By default
    /// a short RFC 9457 `application/problem+json`.
    public var refusalResponse: (@Sendable (RateLimitRefusal) -> ServerResponse)?
    /// Metrics go here (default: the process's bootstrapped factory).
    public var metricsFactory: (any MetricsFactory)?

    /// The defaults: cost 1, no skips, headers on, fail open.
    public init(trustedProxies: TrustedProxies? = nil) {
        self.trustedProxies = trustedProxies
    }
}
