/// The numbers of one quota: its name, algorithm, sustained rate and burst. Which requests it
/// counts together is the policy's key (``QuotaPolicy``).
///
/// - **GCRA** (the generic cell rate algorithm, a token bucket without a refill task):
///   `limit` units per `window` sustained, with up to `burst` units at once. One timestamp
///   per key; no boundary where twice the limit passes.
/// - **Sliding window** (a counter per fixed window, the previous one weighted by how much of
///   it still overlaps the sliding window): `limit` units in any `window`, approximately; the
///   estimate can only err by the previous window's count times the fraction not yet slid.
public struct QuotaLimits: Sendable, Hashable {
    /// How a quota is counted.
    public enum Algorithm: String, Sendable, Hashable {
        /// The generic cell rate algorithm: sustained rate plus burst.
        case gcra
        /// A sliding-window counter.
        case slidingWindow
    }

    /// The policy's name: its identifier in the `RateLimit-Policy` and `RateLimit` fields, in
    /// metrics, and in store keys. Policies with the same name share their counts.
    public let name: String
    /// How it is counted.
    public let algorithm: Algorithm
    /// Units allowed per `window`, sustained.
    public let limit: Int
    /// The window `limit` is counted over.
    public let window: Duration
    /// Units that may be spent at once (GCRA); for a sliding window, `limit`.
    public let burst: Int

    /// GCRA: nanoseconds per unit (rounded up, so the rate is never above `limit`);
    /// sliding window: the window in nanoseconds.
    let interval: Int64
    /// GCRA: how far ahead of now the theoretical arrival time may run (`burst × interval`).
    let tolerance: Int64
    /// The name's hash in this process, computed once: stores key states by it.
    let nameHash: Int

    /// A GCRA quota: `limit` units per `window` sustained, `burst` (default `limit`) at once.
    ///
    /// `QuotaLimits.gcra("burst", limit: 5, per: .seconds(1), burst: 10)` allows 10 requests
    /// at once, then one every 200 ms.
    ///
    /// - Throws: ``RateLimitConfigurationError`` for a limit or window ≤ 0, a burst < 1, a
    ///   burst whose window (`burst × window / limit`) is over a year, or a name that is not
    ///   printable ASCII.
    public static func gcra(_ name: String, limit: Int, per window: Duration, burst: Int? = nil)
        throws(RateLimitConfigurationError) -> QuotaLimits
    {
        try QuotaLimits(name: name, algorithm: .gcra, limit: limit, window: window, burst: burst ?? limit)
    }

    /// A sliding-window quota: about `limit` units in any `window`.
    ///
    /// - Throws: ``RateLimitConfigurationError`` for a limit or window ≤ 0, a window over a
    ///   year, or a name that is not printable ASCII.
    public static func slidingWindow(_ name: String, limit: Int, per window: Duration)
        throws(RateLimitConfigurationError) -> QuotaLimits
    {
        try QuotaLimits(name: name, algorithm: .slidingWindow, limit: limit, window: window, burst: limit)
    }

    /// GCRA: nanoseconds per unit; sliding window: the window, in nanoseconds. What a store
    /// other than memory computes with.
    public var emissionInterval: Int64 { self.interval }
    /// GCRA: how far ahead of now the theoretical arrival time may run, in nanoseconds
    /// (`burst × emissionInterval`); 0 for a sliding window.
    public var burstTolerance: Int64 { self.tolerance }

    static let maximumSpan: Int64 = 366 * 86_400 * 1_000_000_000

    init(name: String, algorithm: Algorithm, limit: Int, window: Duration, burst: Int)
        throws(RateLimitConfigurationError)
    {
        var problems: [String] = []
        if name.isEmpty || name.utf8.count > 64
            || !name.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
        {
            problems.append(
                "policy name \(name.debugDescription) must be 1 to 64 printable ASCII characters without quotes or backslashes (it is sent in a header and used in store keys)"
            )
        }
        let windowNanoseconds = Self.nanoseconds(window)
        if limit <= 0 || limit > 1_000_000_000 {
            problems.append("\(name): limit \(limit) must be in 1...1_000_000_000")
        }
        if windowNanoseconds < 1_000_000 { problems.append("\(name): window \(window) must be at least 1 ms") }
        if windowNanoseconds > Self.maximumSpan { problems.append("\(name): window \(window) must be at most a year") }
        if burst < 1 { problems.append("\(name): burst \(burst) must be at least 1") }
        var interval: Int64 = 0
        var tolerance: Int64 = 0
        if problems.isEmpty {
            switch algorithm {
            case .gcra:
                interval = (windowNanoseconds + Int64(limit) - 1) / Int64(limit)
                let (product, overflow) = interval.multipliedReportingOverflow(by: Int64(burst))
                if overflow || product > Self.maximumSpan {
                    problems.append(
                        "\(name): a burst of \(burst) at \(limit) per \(window) takes over a year to refill; lower the burst or raise the rate"
                    )
                }
                tolerance = product
            case .slidingWindow:
                interval = windowNanoseconds
            }
        }
        guard problems.isEmpty else { throw RateLimitConfigurationError(problems: problems) }
        self.name = name
        self.algorithm = algorithm
        self.limit = limit
        self.window = window
        self.burst = burst
        self.interval = interval
        self.tolerance = tolerance
        self.nameHash = name.hashValue
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64.max / 1_000_000_000 else { return .max }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The window advertised in `RateLimit-Policy` (`w`, whole seconds, at least 1): the
    /// window itself, or for GCRA the time a full burst takes to refill.
    public var advertisedWindowSeconds: Int {
        let span = self.algorithm == .gcra ? self.tolerance : self.interval
        return max(1, Int((span + 999_999_999) / 1_000_000_000))
    }

    /// The quota advertised in `RateLimit-Policy` (`q`): the burst for GCRA, else the limit.
    public var advertisedQuota: Int { self.algorithm == .gcra ? self.burst : self.limit }

    // MARK: The algorithms, on one key's state

    /// Decides whether `cost` units may be spent at `now`, and the state if they are.
    func evaluate(_ state: QuotaState, now: Int64, cost: Int64) -> (outcome: QuotaOutcome, next: QuotaState) {
        switch self.algorithm {
        case .gcra: return self.evaluateGCRA(state, now: now, cost: cost)
        case .slidingWindow: return self.evaluateWindow(state, now: now, cost: cost)
        }
    }

    func evaluateGCRA(_ state: QuotaState, now: Int64, cost: Int64) -> (outcome: QuotaOutcome, next: QuotaState) {
        let tat = max(state.a, now)
        if cost &* self.interval > self.tolerance {
            // More than a full bucket: it can never pass. Say so with the longest wait there
            // is, a full refill, rather than a wait after which it would fail again anyway.
            let available = max(0, (self.tolerance - (tat - now)) / self.interval)
            return (
                QuotaOutcome(
                    allowed: false, remaining: Int(available), reset: self.tolerance, retryAfter: self.tolerance),
                state
            )
        }
        let next = tat &+ cost &* self.interval
        if next &- now > self.tolerance {
            // Refused: the earliest time `cost` units fit, and what is left now.
            let available = max(0, (self.tolerance - (tat - now)) / self.interval)
            let retry = next - self.tolerance - now
            return (QuotaOutcome(allowed: false, remaining: Int(available), reset: retry, retryAfter: retry), state)
        }
        let remaining = (self.tolerance - (next - now)) / self.interval
        return (
            QuotaOutcome(allowed: true, remaining: Int(remaining), reset: next - now, retryAfter: 0),
            QuotaState(a: next, b: 0, c: 0)
        )
    }

    func evaluateWindow(_ state: QuotaState, now: Int64, cost: Int64) -> (outcome: QuotaOutcome, next: QuotaState) {
        let window = self.interval
        let index = now / window
        let elapsed = now - index * window
        var current: Int64 = 0
        var previous: Int64 = 0
        if state.a == index {
            current = state.b
            previous = state.c
        } else if state.a == index - 1 {
            previous = state.b
        }
        let limit = Double(self.limit)
        // The same order of operations as the Redis script, so both round alike.
        let estimate = Double(previous) * Double(window - elapsed) / Double(window) + Double(current)
        if estimate + Double(cost) <= limit {
            let remaining = max(0, Int((limit - estimate - Double(cost)).rounded(.down)))
            return (
                QuotaOutcome(allowed: true, remaining: remaining, reset: window - elapsed, retryAfter: 0),
                QuotaState(a: index, b: current + cost, c: previous)
            )
        }
        let retry = Self.windowRetry(
            previous: previous, current: current, cost: cost, limit: Int64(self.limit), window: window,
            elapsed: elapsed)
        let remaining = max(0, Int((limit - estimate).rounded(.down)))
        return (QuotaOutcome(allowed: false, remaining: remaining, reset: retry, retryAfter: retry), state)
    }

    /// The time until `cost` fits in a sliding window: later in this window as the previous
    /// window's weight falls, or in the next one, where this window's count is the weighted one.
    static func windowRetry(previous: Int64, current: Int64, cost: Int64, limit: Int64, window: Int64, elapsed: Int64)
        -> Int64
    {
        let left = window - elapsed
        guard cost <= limit else { return left + window }
        let roomNow = limit - current - cost
        if roomNow >= 0 && previous > 0 {
            // previous × (window − elapsed − Δ) / window ≤ roomNow
            let delta = Double(left) - Double(roomNow) * Double(window) / Double(previous)
            return max(1, Int64(delta.rounded(.up)))
        }
        // In the next window: current × (window − e) / window + cost ≤ limit.
        guard current > 0 else { return max(1, left) }
        let needed = Double(window) - Double(limit - cost) * Double(window) / Double(current)
        return max(1, left + max(0, Int64(needed.rounded(.up))))
    }

    /// The state after giving back `cost` units spent earlier.
    func refund(_ state: QuotaState, now: Int64, cost: Int64) -> QuotaState {
        switch self.algorithm {
        case .gcra:
            return QuotaState(a: max(now, state.a - cost * self.interval), b: 0, c: 0)
        case .slidingWindow:
            // Only this window's units can be given back; older ones are already fading.
            guard state.a == now / self.interval else { return state }
            return QuotaState(a: state.a, b: max(0, state.b - cost), c: state.c)
        }
    }

    /// When the state becomes the same as no state at all, so it can be dropped losslessly.
    func idleAt(_ state: QuotaState) -> Int64 {
        switch self.algorithm {
        case .gcra: return state.a
        case .slidingWindow: return (state.a + 2) * self.interval
        }
    }
}

/// One key's state for one quota: GCRA uses `a` (the theoretical arrival time); a sliding
/// window uses `a` (the window's index), `b` (its count) and `c` (the previous one's).
/// All zero is the same as a key never seen.
public struct QuotaState: Sendable, Hashable {
    /// GCRA: the theoretical arrival time (ns since 1970); sliding window: the window index.
    public var a: Int64
    /// Sliding window: units counted in window `a`.
    public var b: Int64
    /// Sliding window: units counted in window `a − 1`.
    public var c: Int64

    /// Creates a state.
    @inlinable
    public init(a: Int64, b: Int64, c: Int64) {
        self.a = a
        self.b = b
        self.c = c
    }

    /// A key never seen.
    public static let fresh = QuotaState(a: 0, b: 0, c: 0)
}

/// What one quota decided for one request.
public struct QuotaOutcome: Sendable, Hashable {
    /// Whether the units were spent.
    public var allowed: Bool
    /// Units left after this decision.
    public var remaining: Int
    /// Nanoseconds until the quota is whole again (allowed), or until the request's units fit
    /// (refused): the `t` of the `RateLimit` field.
    public var reset: Int64
    /// Nanoseconds until the request's units fit; 0 when allowed.
    public var retryAfter: Int64

    /// Creates an outcome.
    @inlinable
    public init(allowed: Bool, remaining: Int, reset: Int64, retryAfter: Int64) {
        self.allowed = allowed
        self.remaining = remaining
        self.reset = reset
        self.retryAfter = retryAfter
    }

    /// Whole seconds of ``reset``, rounded up (never earlier than the truth).
    public var resetSeconds: Int { Int((self.reset + 999_999_999) / 1_000_000_000) }
    /// Whole seconds of ``retryAfter``, rounded up (never earlier than the truth).
    public var retryAfterSeconds: Int { Int((self.retryAfter + 999_999_999) / 1_000_000_000) }
}

/// A rate-limit configuration that was refused; every problem comes with its fix.
public struct RateLimitConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found.
    public let problems: [String]

    /// Creates the error.
    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String { "rate limit configuration: " + self.problems.joined(separator: "; ") }
}
