import Synchronization

/// A limit on in-flight requests that follows measured latency (Netflix's Gradient2).
///
/// The limiter keeps two views of latency: a **long** average (hundreds of windows, the
/// server's normal) and the **short** one of the window that just closed. When the short one
/// rises above the long one times `tolerance`, requests are queueing somewhere, and the limit
/// shrinks in proportion (by half at most per window); when it does not, the limit grows by a
/// small queue allowance. The change is smoothed, and held within `minimum...maximum`.
///
/// - A window whose peak in-flight count stayed under half the limit says nothing about the
///   limit (the server was not the bottleneck), so it does not move it.
/// - After latency falls back (a deploy, a cache warmed), the long average is pulled down
///   quickly instead of waiting hundreds of windows.
///
/// Why Gradient2 rather than Vegas or BBR: it needs nothing but latency (no CPU reading, which
/// is wrong in containers and meaningless for I/O-bound handlers, unlike hertz's BBR), and it
/// does not need the true no-load latency that Vegas estimates from its minimum and that a
/// single lucky request skews.
public final class AdaptiveConcurrencyLimiter: Sendable {
    /// The limiter's tuning; the defaults follow Netflix's.
    public struct Configuration: Sendable, Hashable {
        /// The limit before any measurement.
        public var initialLimit: Int = 50
        /// The limit never goes below this.
        public var minimumLimit: Int = 4
        /// The limit never goes above this.
        public var maximumLimit: Int = 1_000
        /// How much the short latency may exceed the long one before the limit shrinks.
        public var tolerance: Double = 1.5
        /// How much of each new estimate is taken (0...1).
        public var smoothing: Double = 0.2
        /// How many windows the long average spans.
        public var longWindowCount: Int = 600
        /// A window closes once it is this old and holds `samplesPerWindow` samples.
        public var windowDuration: Duration = .seconds(1)
        /// Samples a window needs before it closes.
        public var samplesPerWindow: Int = 10

        /// The defaults.
        public init() {}

        func validate() throws(RateLimitConfigurationError) {
            var problems: [String] = []
            if self.minimumLimit < 1 { problems.append("minimumLimit must be at least 1") }
            if self.maximumLimit < self.minimumLimit { problems.append("maximumLimit must be at least minimumLimit") }
            if !(self.minimumLimit...max(self.minimumLimit, self.maximumLimit)).contains(self.initialLimit) {
                problems.append("initialLimit must be within minimumLimit...maximumLimit")
            }
            if !(self.tolerance >= 1) { problems.append("tolerance must be at least 1") }
            if !(self.smoothing > 0 && self.smoothing <= 1) { problems.append("smoothing must be in (0, 1]") }
            if self.longWindowCount < 2 { problems.append("longWindowCount must be at least 2") }
            if self.windowDuration <= .zero { problems.append("windowDuration must be positive") }
            if self.samplesPerWindow < 1 { problems.append("samplesPerWindow must be at least 1") }
            guard problems.isEmpty else { throw RateLimitConfigurationError(problems: problems) }
        }
    }

    struct State {
        var limit: Double
        var inFlight = 0
        // The open window.
        var windowStart: ContinuousClock.Instant?
        var windowSamples = 0
        var windowLatencySum: Double = 0
        var windowPeakInFlight = 0
        // The long average, in nanoseconds; a plain mean over the first windows.
        var longLatency: Double = 0
        var longSamples = 0
    }

    /// The tuning.
    public let configuration: Configuration
    private let state: Mutex<State>

    /// Creates a limiter.
    ///
    /// - Throws: ``RateLimitConfigurationError`` for a configuration out of range.
    public init(configuration: Configuration = Configuration()) throws(RateLimitConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.state = Mutex(State(limit: Double(configuration.initialLimit)))
    }

    /// The current limit.
    public var limit: Int { self.state.withLock { Int($0.limit) } }

    /// Requests in flight now.
    public var inFlight: Int { self.state.withLock { $0.inFlight } }

    /// Takes a slot if fewer than `limit` requests are in flight.
    ///
    /// - Returns: `false` when the request should be shed; otherwise call
    ///   ``release(latency:at:)`` when it finishes.
    public func tryAcquire() -> Bool {
        self.state.withLock { state in
            guard state.inFlight < Int(state.limit) else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Gives a slot back and records how long its request took.
    ///
    /// - Parameters:
    ///   - latency: The request's time in the handler.
    ///   - now: When it finished (a test passes its own instants).
    public func release(latency: Duration, at now: ContinuousClock.Instant = .now) {
        let nanoseconds = Double(latency.components.seconds) * 1e9 + Double(latency.components.attoseconds) / 1e9
        self.state.withLock { state in
            let inFlightAtEnd = state.inFlight
            state.inFlight = max(0, state.inFlight - 1)
            self.record(max(0, nanoseconds), inFlight: inFlightAtEnd, at: now, in: &state)
        }
    }

    private func record(_ latency: Double, inFlight: Int, at now: ContinuousClock.Instant, in state: inout State) {
        if state.windowStart == nil { state.windowStart = now }
        state.windowSamples += 1
        state.windowLatencySum += latency
        state.windowPeakInFlight = max(state.windowPeakInFlight, inFlight)
        guard let start = state.windowStart, now - start >= self.configuration.windowDuration,
            state.windowSamples >= self.configuration.samplesPerWindow
        else { return }
        let short = state.windowLatencySum / Double(state.windowSamples)
        let peak = state.windowPeakInFlight
        state.windowStart = now
        state.windowSamples = 0
        state.windowLatencySum = 0
        state.windowPeakInFlight = 0
        self.update(short: short, peakInFlight: peak, in: &state)
    }

    private func update(short: Double, peakInFlight: Int, in state: inout State) {
        let configuration = self.configuration
        // The long average: a mean while warming up, then exponential.
        if state.longSamples < 10 {
            state.longLatency = (state.longLatency * Double(state.longSamples) + short) / Double(state.longSamples + 1)
        } else {
            let factor = 2 / (Double(configuration.longWindowCount) + 1)
            state.longLatency += (short - state.longLatency) * factor
        }
        state.longSamples += 1
        guard short > 0 else { return }
        // Latency fell well below the long view: pull it down now, not over 600 windows.
        if state.longLatency / short > 2 { state.longLatency *= 0.95 }
        // The server was not the bottleneck in this window: it says nothing about the limit.
        if Double(peakInFlight) < state.limit / 2 { return }
        let gradient = max(0.5, min(1.0, configuration.tolerance * state.longLatency / short))
        let queue = max(1, state.limit.squareRoot().rounded(.down))
        let estimate = state.limit * gradient + queue
        let smoothed = state.limit * (1 - configuration.smoothing) + estimate * configuration.smoothing
        state.limit = min(Double(configuration.maximumLimit), max(Double(configuration.minimumLimit), smoothed))
    }
}
