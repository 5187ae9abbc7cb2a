import CoreMetrics
import NIOCore
import Synchronization

/// How one attempt on an upstream ended, as health and metrics see it.
enum AttemptOutcome: Sendable {
    case success(latency: TimeAmount)
    /// An answer that counts as a failure (an unhealthy status, or too slow).
    case badAnswer
    case failure(ProxyErrorKind)
}

/// What ``UpstreamNode/admit(now:)`` granted: a normal request, or one of the half-open
/// breaker's trial requests.
enum Admission: Sendable {
    case normal
    case trial
}

/// One upstream with its pool, its load and its health.
final class UpstreamNode: Sendable {
    let upstream: Upstream
    let pool: UpstreamPool
    /// Requests in flight.
    let active = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    private let health: Mutex<HealthState>
    let passive: PassiveHealthCheck?
    let breaker: CircuitBreaker?
    let metrics: NodeMetrics

    struct HealthState {
        var activeHealthy = true
        var activePasses = 0
        var activeFails = 0
        var windowStart = NIODeadline.uptimeNanoseconds(0)
        var windowFailures = 0
        var ejectedUntil: NIODeadline?
        var ejections = 0
        var breaker = BreakerState.closed(failures: 0)
        var lastError: String?
    }

    enum BreakerState: Equatable {
        case closed(failures: Int)
        case open(until: NIODeadline)
        case halfOpen(inFlight: Int, successes: Int)
    }

    init(upstream: Upstream, pool: UpstreamPool, passive: PassiveHealthCheck?, breaker: CircuitBreaker?) {
        self.upstream = upstream
        self.pool = pool
        self.passive = passive
        self.breaker = breaker
        self.health = Mutex(HealthState())
        self.metrics = NodeMetrics(upstream: upstream.description)
    }

    /// Whether the node may take a request now (without taking a trial slot).
    func isAvailable(now: NIODeadline) -> Bool {
        self.health.withLock { state in
            guard state.activeHealthy else { return false }
            if let until = state.ejectedUntil, now < until { return false }
            switch state.breaker {
            case .closed: return true
            case .open(let until): return now >= until
            case .halfOpen(let inFlight, _): return inFlight < (self.breaker?.halfOpenTrials ?? 1)
            }
        }
    }

    /// Takes the node for one request, or `nil` when it became unavailable meanwhile.
    func admit(now: NIODeadline) -> Admission? {
        self.health.withLock { state -> Admission? in
            guard state.activeHealthy else { return nil }
            if let until = state.ejectedUntil, now < until { return nil }
            switch state.breaker {
            case .closed:
                return .normal
            case .open(let until):
                guard now >= until else { return nil }
                state.breaker = .halfOpen(inFlight: 1, successes: 0)
                return .trial
            case .halfOpen(let inFlight, let successes):
                guard inFlight < (self.breaker?.halfOpenTrials ?? 1) else { return nil }
                state.breaker = .halfOpen(inFlight: inFlight + 1, successes: successes)
                return .trial
            }
        }
    }

    /// Records how an admitted request ended.
    func record(_ outcome: AttemptOutcome, admission: Admission, now: NIODeadline) {
        let failed: Bool
        switch outcome {
        case .success: failed = false
        case .badAnswer, .failure: failed = true
        }
        var changed: String?
        self.health.withLock { state in
            if failed {
                if case .failure(let kind) = outcome { state.lastError = kind.rawValue }
                if let passive = self.passive {
                    if now - state.windowStart > TimeAmount(passive.window) {
                        state.windowStart = now
                        state.windowFailures = 0
                    }
                    state.windowFailures += 1
                    if state.windowFailures >= passive.maxFailures {
                        let factor = 1 << min(state.ejections, 16)
                        let length = min(
                            .nanoseconds(TimeAmount(passive.ejectFor).nanoseconds * Int64(factor)),
                            TimeAmount(passive.maxEjection))
                        state.ejectedUntil = now + length
                        state.ejections += 1
                        state.windowFailures = 0
                        state.windowStart = now
                        changed = "ejected"
                    }
                }
            } else {
                state.ejections = 0
            }
            guard let breaker = self.breaker else { return }
            switch (state.breaker, admission) {
            case (.halfOpen(let inFlight, let successes), .trial):
                if failed {
                    state.breaker = .open(until: now + TimeAmount(breaker.openFor))
                    changed = "breaker open"
                } else if successes + 1 >= breaker.halfOpenTrials {
                    state.breaker = .closed(failures: 0)
                    changed = "breaker closed"
                } else {
                    state.breaker = .halfOpen(inFlight: max(0, inFlight - 1), successes: successes + 1)
                }
            case (.closed(let failures), _):
                if failed {
                    if failures + 1 >= breaker.failureThreshold {
                        state.breaker = .open(until: now + TimeAmount(breaker.openFor))
                        changed = "breaker open"
                    } else {
                        state.breaker = .closed(failures: failures + 1)
                    }
                } else if failures != 0 {
                    state.breaker = .closed(failures: 0)
                }
            default:
                break
            }
        }
        if let changed { self.metrics.stateChange(changed) }
    }

    /// Records an active check's result; returns the new state when it changed.
    func recordCheck(healthy: Bool, policy: ActiveHealthCheck, error: String?) -> Bool? {
        self.health.withLock { state -> Bool? in
            if healthy {
                state.activeFails = 0
                state.activePasses += 1
                if !state.activeHealthy && state.activePasses >= policy.passes {
                    state.activeHealthy = true
                    // Back from the dead: earlier passive penalties no longer apply.
                    state.ejectedUntil = nil
                    state.ejections = 0
                    state.breaker = .closed(failures: 0)
                    return true
                }
            } else {
                state.lastError = error
                state.activePasses = 0
                state.activeFails += 1
                if state.activeHealthy && state.activeFails >= policy.fails {
                    state.activeHealthy = false
                    return false
                }
            }
            return nil
        }
    }

    /// A snapshot for the status page.
    func status(now: NIODeadline) -> UpstreamStatus {
        let (healthy, ejected, breaker, lastError) = self.health.withLock { state in
            (
                state.activeHealthy,
                state.ejectedUntil.map { now < $0 } ?? false,
                state.breaker,
                state.lastError
            )
        }
        let breakerText: String
        switch breaker {
        case .closed: breakerText = "closed"
        case .open(let until): breakerText = now >= until ? "half-open" : "open"
        case .halfOpen: breakerText = "half-open"
        }
        return UpstreamStatus(
            upstream: self.upstream.description,
            healthy: healthy,
            ejected: ejected,
            circuit: breakerText,
            activeRequests: self.active.load(ordering: .relaxed),
            requests: self.requests.load(ordering: .relaxed),
            failures: self.failures.load(ordering: .relaxed),
            retries: self.retries.load(ordering: .relaxed),
            openConnections: self.pool.openConnections,
            idleConnections: self.pool.idleConnections,
            connectionsOpened: self.pool.openedConnections,
            lastError: lastError
        )
    }
}

/// One upstream as the status page shows it.
public struct UpstreamStatus: Sendable, Equatable {
    /// The upstream's URL.
    public var upstream: String
    /// What the active checks last concluded (`true` without active checks).
    public var healthy: Bool
    /// Whether passive health has it ejected now.
    public var ejected: Bool
    /// `closed`, `open` or `half-open`.
    public var circuit: String
    /// Requests in flight.
    public var activeRequests: Int
    /// Attempts sent to it.
    public var requests: Int
    /// Attempts that failed (connect, timeout, protocol).
    public var failures: Int
    /// Attempts that were retries of a failed attempt elsewhere.
    public var retries: Int
    /// Open pool connections, idle included.
    public var openConnections: Int
    /// Idle pool connections.
    public var idleConnections: Int
    /// Connections opened since start.
    public var connectionsOpened: Int
    /// The last failure's kind.
    public var lastError: String?

    /// Whether it takes requests now.
    public var available: Bool { self.healthy && !self.ejected && self.circuit != "open" }
}

/// The swift-metrics instruments of one upstream, made once.
struct NodeMetrics: Sendable {
    let requests: [Counter]
    let latency: Timer
    let retries: Counter
    let upstream: String

    init(upstream: String) {
        self.upstream = upstream
        self.requests = ["1xx", "2xx", "3xx", "4xx", "5xx"].map {
            Counter(label: "strata_proxy_upstream_requests_total", dimensions: [("upstream", upstream), ("class", $0)])
        }
        self.latency = Timer(label: "strata_proxy_upstream_duration_seconds", dimensions: [("upstream", upstream)])
        self.retries = Counter(label: "strata_proxy_retries_total", dimensions: [("upstream", upstream)])
    }

    func answered(status: Int, latency: TimeAmount) {
        let index = min(max(status / 100 - 1, 0), 4)
        self.requests[index].increment()
        self.latency.recordNanoseconds(latency.nanoseconds)
    }

    func error(_ kind: ProxyErrorKind) {
        Counter(
            label: "strata_proxy_upstream_errors_total",
            dimensions: [("upstream", self.upstream), ("kind", kind.rawValue)]
        )
        .increment()
    }

    func stateChange(_ state: String) {
        Counter(
            label: "strata_proxy_upstream_state_changes_total",
            dimensions: [("upstream", self.upstream), ("state", state)]
        )
        .increment()
    }

    func health(_ healthy: Bool) {
        Gauge(label: "strata_proxy_upstream_healthy", dimensions: [("upstream", self.upstream)]).record(healthy ? 1 : 0)
    }
}
