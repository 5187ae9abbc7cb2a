public import NIOCore
import NIOPosix
public import Strata

#if TLS
public import NIOSSL
#endif

/// Everything a ``ReverseProxy`` does, with safe defaults.
public struct ReverseProxyConfiguration: Sendable {
    /// The upstreams requests are spread over.
    public var upstreams: [Upstream]
    /// How an upstream is picked.
    public var loadBalancing: LoadBalancingPolicy = .roundRobin
    /// What the upstream sees as `Host`.
    public var host: HostPolicy = .upstream
    /// Which forwarding fields the proxy sets.
    public var forwarding: ForwardingHeaders = .xForwarded
    /// Peers whose forwarding fields are kept and extended; every other peer's are replaced.
    /// `nil` trusts nobody.
    public var trustedProxies: TrustedProxies?
    /// When set, the pseudonym this proxy adds to `Via` in both directions (`1.1 name`).
    public var via: String?
    /// Connect, response-head, idle and total limits.
    public var timeouts = ProxyTimeouts()
    /// When a failed attempt is tried again on another upstream.
    public var retries = RetryPolicy()
    /// Health checks the proxy makes on its own clock while ``ReverseProxy/run()`` runs.
    public var activeHealthCheck: ActiveHealthCheck?
    /// Ejection of upstreams that fail on real traffic; on by default.
    public var passiveHealthCheck: PassiveHealthCheck? = PassiveHealthCheck()
    /// A circuit breaker per upstream; off by default.
    public var circuitBreaker: CircuitBreaker?
    /// The most connections open to one upstream; requests beyond wait up to the connect timeout.
    public var maxConnectionsPerUpstream = 512
    /// How long an unused keep-alive connection stays open.
    public var poolIdleTimeout: Duration = .seconds(60)
    /// Responses with a declared length up to this are read whole before they are answered, so
    /// the upstream connection is free at once; longer ones, and those without a length, stream.
    public var responseBufferSize = 32 * 1024
    /// The largest response head accepted from an upstream; a larger one is a 502.
    public var maxResponseHeadSize = 64 * 1024
    /// Whether `Upgrade: h2c` is forwarded. It is not by default: an h2c tunnel carries requests
    /// past this proxy's rules.
    public var allowH2CUpgrade = false
    /// How long to wait for the upstream's `100 Continue` before sending the body anyway.
    public var expectContinueTimeout: Duration = .seconds(1)
    /// When set, host-name upstreams are resolved (A and AAAA) on this interval while
    /// ``ReverseProxy/run()`` runs, and each address becomes an upstream of its own (same base
    /// path, weight and `Host`): the service-discovery seam for names that list several
    /// instances. `nil` (the default) resolves a name on each new connection instead.
    public var resolveInterval: Duration?
    #if TLS
    /// How `https://` upstreams are verified and what this proxy presents (`TLS` trait).
    /// Defaults to swift-nio-ssl's client configuration: the system's trust roots, full
    /// verification against the upstream's host name (sent in SNI).
    public var tlsConfiguration: TLSConfiguration = .makeClientConfiguration()
    #endif
    /// Seeds the random choices of ``LoadBalancingPolicy/powerOfTwoChoices``, for tests.
    public var randomSeed: UInt64?
    /// The event loops upstream connections run on when a request does not come from one.
    public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// A configuration over `upstreams`.
    public init(upstreams: [Upstream]) {
        self.upstreams = upstreams
    }

    /// Checks the values; every problem is listed in one error.
    public func validate() throws(ReverseProxyConfigurationError) {
        var problems: [String] = []
        if self.upstreams.isEmpty { problems.append("at least one upstream is needed") }
        if self.maxConnectionsPerUpstream < 1 { problems.append("maxConnectionsPerUpstream must be at least 1") }
        if self.retries.maxRetries < 0 { problems.append("retries.maxRetries must not be negative") }
        if self.retries.replayBufferSize < 0 { problems.append("retries.replayBufferSize must not be negative") }
        for (name, value) in [
            ("timeouts.connect", self.timeouts.connect), ("timeouts.responseHead", self.timeouts.responseHead),
            ("timeouts.idle", self.timeouts.idle), ("timeouts.tunnelIdle", self.timeouts.tunnelIdle),
            ("poolIdleTimeout", self.poolIdleTimeout),
        ] where value <= .zero {
            problems.append("\(name) must be positive")
        }
        if let interval = self.resolveInterval, interval <= .zero {
            problems.append("resolveInterval must be positive")
        }
        if let check = self.activeHealthCheck {
            if check.interval <= .zero || check.timeout <= .zero {
                problems.append("activeHealthCheck interval and timeout must be positive")
            }
            if check.passes < 1 || check.fails < 1 {
                problems.append("activeHealthCheck passes and fails must be at least 1")
            }
            if !check.path.hasPrefix("/") { problems.append("activeHealthCheck.path must start with /") }
        }
        if let passive = self.passiveHealthCheck, passive.maxFailures < 1 {
            problems.append("passiveHealthCheck.maxFailures must be at least 1")
        }
        if let breaker = self.circuitBreaker, breaker.failureThreshold < 1 || breaker.halfOpenTrials < 1 {
            problems.append("circuitBreaker failureThreshold and halfOpenTrials must be at least 1")
        }
        if case .consistentHash(_, .boundedLoad(let factor)) = self.loadBalancing, factor < 1 {
            problems.append("a bounded-load factor must be at least 1")
        }
        if !problems.isEmpty { throw ReverseProxyConfigurationError(problems: problems) }
    }
}

/// A ``ReverseProxyConfiguration`` that was refused.
public struct ReverseProxyConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found.
    public let problems: [String]
    public var description: String { "ReverseProxyConfiguration: " + self.problems.joined(separator: "; ") }
}

/// What the upstream sees as `Host`.
public enum HostPolicy: Sendable {
    /// The client's `Host` (the authority of an absolute-form target, when it had one).
    case preserve
    /// The upstream's own `host[:port]`, as nginx's `proxy_pass` and Go's `SetURL` do.
    case upstream
    /// A fixed value.
    case fixed(String)
}

/// The forwarding fields the proxy sets.
public struct ForwardingHeaders: OptionSet, Sendable {
    /// The option bits.
    public let rawValue: Int
    /// Options from their bits.
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto`.
    public static let xForwarded = ForwardingHeaders(rawValue: 1)
    /// RFC 7239 `Forwarded`.
    public static let forwarded = ForwardingHeaders(rawValue: 2)
    /// Both.
    public static let all: ForwardingHeaders = [.xForwarded, .forwarded]
}

/// The proxy's time limits. Each expiry answers 504 when nothing was sent to the client yet,
/// and cuts the client connection otherwise.
public struct ProxyTimeouts: Sendable {
    /// Opening a connection to an upstream.
    public var connect: Duration = .seconds(5)
    /// From the end of the request to the response head.
    public var responseHead: Duration = .seconds(60)
    /// Waiting for the next bytes of a response body (not counted while the client is slow).
    public var idle: Duration = .seconds(60)
    /// A whole exchange, body included; `nil` for none (event streams run for hours).
    public var total: Duration?
    /// A tunnel (WebSocket, other upgrades) with no bytes either way closes after this.
    public var tunnelIdle: Duration = .seconds(300)
    /// A tunnel's longest life; `nil` for none.
    public var tunnelTotal: Duration?

    /// The defaults: 5 s connect, 60 s head and idle, no total, 300 s tunnel idle.
    public init() {}
}

/// When a failed attempt is tried again, on another upstream.
///
/// A connect failure is retried for any method: nothing was sent. A timeout or a broken
/// connection after the request went out, or a status in `retryOnStatuses`, is retried only for
/// an idempotent method, and only when the request body (if any) fitted in the replay buffer.
/// A streamed body is never sent twice.
public struct RetryPolicy: Sendable {
    /// Attempts after the first.
    public var maxRetries = 2
    /// No retry starts later than this after the request arrived; `nil` for no limit.
    public var tryDuration: Duration? = .seconds(10)
    /// Answers that are retried like failures (say, `[502, 503]`).
    public var retryOnStatuses: Set<Int> = []
    /// Request bodies with a declared length up to this are read first, so they can be sent again.
    public var replayBufferSize = 64 * 1024

    /// The defaults: two retries within 10 s, 64 KiB replay buffer.
    public init() {}
}
