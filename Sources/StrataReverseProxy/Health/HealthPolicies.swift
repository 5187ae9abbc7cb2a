/// Active health checks: the proxy asks each upstream for `path` on its own clock.
///
/// Checks run while ``ReverseProxy/run()`` runs (the proxy is a ServiceLifecycle `Service`). An
/// upstream becomes unhealthy after `fails` failed checks in a row and healthy again after
/// `passes` good ones; an unhealthy upstream gets no requests.
public struct ActiveHealthCheck: Sendable {
    /// The path asked for, with `GET`.
    public var path: String
    /// Time between two checks of one upstream.
    public var interval: Duration
    /// How long a check may take, connect included.
    public var timeout: Duration
    /// The statuses that count as healthy.
    public var expectedStatus: ClosedRange<Int>
    /// Good checks in a row that bring an unhealthy upstream back.
    public var passes: Int
    /// Failed checks in a row that take a healthy upstream out.
    public var fails: Int

    /// Creates an active check.
    public init(
        path: String = "/health",
        interval: Duration = .seconds(5),
        timeout: Duration = .seconds(2),
        expectedStatus: ClosedRange<Int> = 200...399,
        passes: Int = 2,
        fails: Int = 2
    ) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.expectedStatus = expectedStatus
        self.passes = passes
        self.fails = fails
    }
}

/// Passive health: failures seen on real traffic eject an upstream for a while.
///
/// A failure is a connect error, a timeout, a protocol error, one of `unhealthyStatuses`, or an
/// answer slower than `unhealthyLatency`. `maxFailures` of them within `window` eject the upstream
/// for `ejectFor`; each ejection in a row doubles that, up to `maxEjection`. A success ends the
/// run of ejections.
public struct PassiveHealthCheck: Sendable {
    /// Failures within `window` that eject the upstream.
    public var maxFailures: Int
    /// The window failures are counted in.
    public var window: Duration
    /// The first ejection's length.
    public var ejectFor: Duration
    /// The longest ejection.
    public var maxEjection: Duration
    /// Response statuses that count as failures (say, `[502, 503, 504]`).
    public var unhealthyStatuses: Set<Int>
    /// A response head slower than this counts as a failure.
    public var unhealthyLatency: Duration?

    /// Creates a passive check.
    public init(
        maxFailures: Int = 3,
        window: Duration = .seconds(10),
        ejectFor: Duration = .seconds(10),
        maxEjection: Duration = .seconds(300),
        unhealthyStatuses: Set<Int> = [],
        unhealthyLatency: Duration? = nil
    ) {
        self.maxFailures = maxFailures
        self.window = window
        self.ejectFor = ejectFor
        self.maxEjection = maxEjection
        self.unhealthyStatuses = unhealthyStatuses
        self.unhealthyLatency = unhealthyLatency
    }
}

/// A circuit breaker per upstream: closed, open, then half-open with a few trial requests.
///
/// `failureThreshold` failures in a row open it: the upstream gets nothing for `openFor`. Then
/// at most `halfOpenTrials` requests at once go through; as many successes close it, and one
/// failure opens it again.
public struct CircuitBreaker: Sendable {
    /// Consecutive failures that open the breaker.
    public var failureThreshold: Int
    /// How long it stays open.
    public var openFor: Duration
    /// Trial requests let through at once when half-open, and successes needed to close.
    public var halfOpenTrials: Int

    /// Creates a breaker.
    public init(failureThreshold: Int = 5, openFor: Duration = .seconds(5), halfOpenTrials: Int = 1) {
        self.failureThreshold = failureThreshold
        self.openFor = openFor
        self.halfOpenTrials = halfOpenTrials
    }
}
