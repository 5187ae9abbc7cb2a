public import CoreMetrics
public import HTTPTypes
public import Logging
import NIOCore
public import Strata
import Synchronization

/// Exact per-key quotas: every policy that finds a key for the request is checked, and the
/// request is refused with `429` when any enforced policy is exhausted.
///
/// ```swift
/// let limiter = try RateLimitMiddleware<BasicContext>(
///     policies: [
///         QuotaPolicy(try .gcra("burst", limit: 5, per: .seconds(1), burst: 10)),
///         QuotaPolicy(try .gcra("minute", limit: 100, per: .seconds(60))),
///     ],
///     store: MemoryRateLimitStore(),
///     configuration: RateLimitConfiguration(trustedProxies: try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor))
/// )
/// ```
///
/// Allowed responses carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers),
/// one member per policy; a refusal adds `Retry-After`, never earlier than the refusing
/// policies' `t`.
public struct RateLimitMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// The policies, in the order their fields are listed.
    public let policies: [QuotaPolicy<Context>]
    /// Where the quotas live.
    public let store: any RateLimitStore
    /// Keys, costs, skips, answers.
    public let configuration: RateLimitConfiguration<Context>
    private let logger: Logger
    private let metrics: RateLimitMetrics
    private let allPoliciesValue: String
    private let serialisedNames: [String]
    // The policies without their generic part, for the hot path.
    private let templates: [QuotaCheck]
    private let resolvers: [KeyResolver]
    private let customKeys: [@Sendable (ServerRequest, Context) -> RateLimitKey?]
    /// The store when it is the memory one: decided synchronously, without an existential hop.
    private let memoryStore: MemoryRateLimitStore?
    private let lastStoreErrorLog: StoreErrorLogThrottle

    /// Creates the middleware.
    ///
    /// - Throws: ``RateLimitConfigurationError`` when there is no policy, two policies share a
    ///   name, a key reads a forwarding header (use ``RateLimitKeySource/clientAddress(ipv6Prefix:)``
    ///   with `trustedProxies`), or an IPv6 prefix is outside 1...128.
    public init(
        policies: [QuotaPolicy<Context>],
        store: any RateLimitStore = MemoryRateLimitStore(),
        configuration: RateLimitConfiguration<Context> = RateLimitConfiguration(),
        logger: Logger = Logger(label: "strata.ratelimit")
    ) throws(RateLimitConfigurationError) {
        var problems: [String] = []
        if policies.isEmpty { problems.append("give at least one policy") }
        var names = Set<String>()
        for policy in policies {
            if !names.insert(policy.limits.name).inserted {
                problems.append(
                    "two policies are named \(policy.limits.name.debugDescription); give each its own name (names key the store)"
                )
            }
            if let header = policy.key.forwardingHeader {
                let fix =
                    configuration.trustedProxies == nil
                    ? "list your proxies in RateLimitConfiguration(trustedProxies:) and key by .clientAddress()"
                    : "key by .clientAddress(), which reads it through your trustedProxies"
                problems.append(
                    "\(policy.limits.name): keying by \(header.canonicalName) lets any client pick its own key by sending it; \(fix)"
                )
            }
            if case .clientAddress(let prefix) = policy.key.kind, !(1...128).contains(prefix) {
                problems.append("\(policy.limits.name): ipv6Prefix \(prefix) must be in 1...128")
            }
        }
        guard problems.isEmpty else { throw RateLimitConfigurationError(problems: problems) }
        self.policies = policies
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.metrics = RateLimitMetrics(policies: policies.map(\.limits.name), factory: configuration.metricsFactory)
        self.allPoliciesValue = RateLimitHeaders.policyValue(policies.map(\.limits))
        self.serialisedNames = policies.map { RateLimitHeaders.serialisedName($0.limits.name) }
        self.memoryStore = store as? MemoryRateLimitStore
        self.templates = policies.map { QuotaCheck(limits: $0.limits, key: RateLimitKey("*"), shadow: $0.shadow) }
        var customKeys: [@Sendable (ServerRequest, Context) -> RateLimitKey?] = []
        self.resolvers = policies.map { policy in
            if let function = policy.key.customFunction { customKeys.append(function) }
            return policy.key.resolver(custom: customKeys.count - 1)
        }
        self.customKeys = customKeys
        self.lastStoreErrorLog = StoreErrorLogThrottle()
    }

    public func handle(
        _ request: ServerRequest, context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        if let skip = self.configuration.skip, skip(request, context) { return try await next(request, context) }
        if self.templates.count == 1, !self.templates[0].shadow, let memory = self.memoryStore {
            return try await self.handleAlone(request, context: context, memory: memory, next: next)
        }
        var checks: [QuotaCheck] = []
        checks.reserveCapacity(self.policies.count)
        var applied: [Int] = []
        applied.reserveCapacity(self.policies.count)
        let peer = context.remoteAddress
        for index in self.resolvers.indices {
            guard let key = self.key(of: index, for: request, context: context, peer: peer) else { continue }
            var check = self.templates[index]
            check.key = key
            checks.append(check)
            applied.append(index)
        }
        guard !checks.isEmpty else { return try await next(request, context) }
        let cost = max(0, self.configuration.cost?(request, context) ?? 1)

        var outcomes: [QuotaOutcome]
        do {
            if let memory = self.memoryStore {
                // In memory a decision is a lock and a lookup: not worth two clock reads to time.
                outcomes = memory.acquire(checks, cost: cost, now: memory.clock.now())
            } else {
                let started = ContinuousClock.now
                outcomes = try await self.store.acquire(checks, cost: cost)
                self.metrics.storeDuration.recordNanoseconds(Self.nanoseconds(since: started))
            }
        } catch {
            self.metrics.storeErrors.increment()
            self.logStoreError(error, context: context)
            switch self.configuration.failureMode {
            case .open: return try await next(request, context)
            case .closed: return Self.storeUnavailable()
            }
        }

        var refusedBy: [String] = []
        var retryAfter: Int64 = 0
        for (position, outcome) in outcomes.enumerated() {
            let index = applied[position]
            if outcome.allowed {
                self.metrics.allowed[index].increment()
            } else if checks[position].shadow {
                self.metrics.shadowRefused[index].increment()
            } else {
                self.metrics.refused[index].increment()
                refusedBy.append(checks[position].limits.name)
                retryAfter = max(retryAfter, outcome.retryAfter)
            }
        }

        if !refusedBy.isEmpty {
            return self.refusal(
                by: refusedBy, retryAfter: retryAfter, checks: checks, outcomes: outcomes, applied: applied, cost: cost,
                context: context)
        }

        var response: ServerResponse
        do {
            response = try await next(request, context)
        } catch {
            if self.configuration.skipFailedResponses {
                await self.giveBack(checks, outcomes: outcomes, cost: cost, context)
            }
            throw error
        }
        let failed = response.head.status.code >= 400
        if (failed && self.configuration.skipFailedResponses) || (!failed && self.configuration.skipSuccessfulResponses)
        {
            await self.giveBack(checks, outcomes: outcomes, cost: cost, context)
        }
        if self.configuration.headersOnAllowedResponses {
            self.addFields(to: &response.head.headerFields, checks: checks, outcomes: outcomes, applied: applied)
        }
        return response
    }

    /// The key policy `index` counts this request under, or `nil` when it does not apply.
    private func key(of index: Int, for request: ServerRequest, context: Context, peer: SocketAddress?) -> RateLimitKey?
    {
        let resolver = self.resolvers[index]
        if case .custom(let custom) = resolver { return self.customKeys[custom](request, context) }
        return resolver.key(for: request, peer: peer, proxies: self.configuration.trustedProxies)
    }

    /// The 429 for a request some enforced policy refused; nothing was spent.
    private func refusal(
        by refusedBy: [String], retryAfter: Int64, checks: [QuotaCheck], outcomes: [QuotaOutcome], applied: [Int],
        cost: Int, context: Context
    ) -> ServerResponse {
        var outcomes = outcomes
        let seconds = max(1, Int((retryAfter + 999_999_999) / 1_000_000_000))
        context.logger.debug(
            "rate limited",
            metadata: [
                "policies": .string(refusedBy.joined(separator: ",")), "retry_after": .stringConvertible(seconds),
            ])
        // Nothing was spent: the policies that would have allowed it still have `cost` more.
        for index in outcomes.indices where outcomes[index].allowed {
            outcomes[index].remaining = min(outcomes[index].remaining + cost, checks[index].limits.advertisedQuota)
        }
        let refusal = RateLimitRefusal(policies: refusedBy, retryAfterSeconds: seconds)
        var response = self.configuration.refusalResponse?(refusal) ?? Self.problemResponse(refusal)
        response.head.headerFields[.retryAfter] = String(seconds)
        self.addFields(to: &response.head.headerFields, checks: checks, outcomes: outcomes, applied: applied)
        return response
    }

    /// One enforced policy in the memory store, the common case: decided without arrays.
    private func handleAlone(
        _ request: ServerRequest, context: Context, memory: MemoryRateLimitStore,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        guard let key = self.key(of: 0, for: request, context: context, peer: context.remoteAddress) else {
            return try await next(request, context)
        }
        let cost = max(0, self.configuration.cost?(request, context) ?? 1)
        let limits = self.templates[0].limits
        let outcome = memory.acquire(limits, key: key, cost: cost, now: memory.clock.now())
        guard outcome.allowed else {
            self.metrics.refused[0].increment()
            return self.refusal(
                by: [limits.name], retryAfter: outcome.retryAfter,
                checks: [QuotaCheck(limits: limits, key: key)], outcomes: [outcome], applied: [0], cost: cost,
                context: context)
        }
        self.metrics.allowed[0].increment()
        var response: ServerResponse
        do {
            response = try await next(request, context)
        } catch {
            if self.configuration.skipFailedResponses, cost > 0 {
                memory.refund([QuotaCheck(limits: limits, key: key)], cost: cost, now: memory.clock.now())
            }
            throw error
        }
        let failed = response.head.status.code >= 400
        if cost > 0,
            (failed && self.configuration.skipFailedResponses)
                || (!failed && self.configuration.skipSuccessfulResponses)
        {
            memory.refund([QuotaCheck(limits: limits, key: key)], cost: cost, now: memory.clock.now())
        }
        if self.configuration.headersOnAllowedResponses {
            let value = RateLimitHeaders.rateLimitValue(
                name: self.serialisedNames[0], remaining: Int64(outcome.remaining), reset: Int64(outcome.resetSeconds))
            // Room for both fields at once: one growth of the field array, not two.
            response.head.headerFields.reserveCapacity(response.head.headerFields.count + 2)
            response.head.headerFields.append(
                HTTPField(name: RateLimitHeaders.policyName, value: self.allPoliciesValue))
            response.head.headerFields.append(HTTPField(name: RateLimitHeaders.rateLimitName, value: value))
            if self.configuration.legacyHeaders {
                self.addLegacyFields(
                    to: &response.head.headerFields, limits: limits, outcome: outcome)
            }
        }
        return response
    }

    // MARK: Keys

    /// What every policy says about `key` now, spending nothing: `(policy, outcome)` for a
    /// request of `cost` units.
    public func status(of key: RateLimitKey, cost: Int = 1) async throws -> [(policy: String, outcome: QuotaOutcome)] {
        let checks = self.policies.map { QuotaCheck(limits: $0.limits, key: key, shadow: $0.shadow) }
        let outcomes = try await self.store.peek(checks, cost: cost)
        return zip(checks, outcomes).map { ($0.limits.name, $1) }
    }

    /// Makes `key`'s quotas whole again, under every policy or only the one named.
    public func reset(_ key: RateLimitKey, policy name: String? = nil) async throws {
        for policy in self.policies where name == nil || policy.limits.name == name {
            try await self.store.reset(policy.limits, key: key)
        }
    }

    // MARK: Helpers

    private func giveBack(_ checks: [QuotaCheck], outcomes: [QuotaOutcome], cost: Int, _ context: Context) async {
        guard cost > 0 else { return }
        let spent = zip(checks, outcomes).filter { $0.1.allowed }.map(\.0)
        do {
            try await self.store.refund(spent, cost: cost)
        } catch {
            self.metrics.storeErrors.increment()
            self.logStoreError(error, context: context)
        }
    }

    private func addFields(to fields: inout HTTPFields, checks: [QuotaCheck], outcomes: [QuotaOutcome], applied: [Int])
    {
        let policyValue =
            applied.count == self.policies.count
            ? self.allPoliciesValue : RateLimitHeaders.policyValue(checks.map(\.limits))
        fields.append(HTTPField(name: RateLimitHeaders.policyName, value: policyValue))
        fields.append(
            HTTPField(
                name: RateLimitHeaders.rateLimitName,
                value: RateLimitHeaders.rateLimitValue(
                    names: self.serialisedNames, outcomes: outcomes, indices: applied)))
        if self.configuration.legacyHeaders,
            let tightest = outcomes.indices.min(by: { outcomes[$0].remaining < outcomes[$1].remaining })
        {
            self.addLegacyFields(to: &fields, limits: checks[tightest].limits, outcome: outcomes[tightest])
        }
    }

    /// `X-RateLimit-Limit`, `-Remaining` and `-Reset` of one policy.
    private func addLegacyFields(to fields: inout HTTPFields, limits: QuotaLimits, outcome: QuotaOutcome) {
        fields[RateLimitHeaders.legacyLimit] = String(limits.advertisedQuota)
        fields[RateLimitHeaders.legacyRemaining] = String(max(0, outcome.remaining))
        fields[RateLimitHeaders.legacyReset] = String(outcome.resetSeconds)
    }

    private func logStoreError(_ error: any Error, context: Context) {
        // One line a second at most: a store that is down would otherwise log every request.
        guard self.lastStoreErrorLog.shouldLog() else { return }
        context.logger.warning(
            "rate-limit store failed; \(self.configuration.failureMode == .open ? "failing open: requests pass unlimited" : "failing closed: requests get 503")",
            metadata: ["error": .string(String(describing: error))])
    }

    static func problemResponse(_ refusal: RateLimitRefusal) -> ServerResponse {
        let names = refusal.policies.map { "\\\"\($0)\\\"" }.joined(separator: ", ")
        let body =
            "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,\"detail\":\"Quota exhausted (\(names)); retry in \(refusal.retryAfterSeconds) s.\"}\n"
        return ServerResponse(
            status: .tooManyRequests,
            headerFields: [.contentType: "application/problem+json", .cacheControl: "no-store"],
            body: .init(string: body))
    }

    static func storeUnavailable() -> ServerResponse {
        ServerResponse(
            status: .serviceUnavailable,
            headerFields: [.contentType: "application/problem+json", .retryAfter: "1", .cacheControl: "no-store"],
            body: .init(
                string:
                    "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"The rate limiter cannot decide right now.\"}\n"
            ))
    }

    static func nanoseconds(since start: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Lets one store-failure log line through per second.
final class StoreErrorLogThrottle: Sendable {
    private let last = Atomic<Int64>(0)

    func shouldLog() -> Bool {
        let now = SystemWallClock().now().secondsSince1970
        let previous = self.last.load(ordering: .relaxed)
        guard now > previous else { return false }
        return self.last.compareExchange(expected: previous, desired: now, ordering: .relaxed).exchanged
    }
}

/// The rate limiter's counters, made once per middleware.
struct RateLimitMetrics: Sendable {
    let allowed: [Counter]
    let refused: [Counter]
    let shadowRefused: [Counter]
    let storeErrors: Counter
    let storeDuration: Timer

    init(policies: [String], factory: (any MetricsFactory)?) {
        func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
            if let factory { return Counter(label: label, dimensions: dimensions, factory: factory) }
            return Counter(label: label, dimensions: dimensions)
        }
        func decisions(_ result: String) -> [Counter] {
            policies.map { counter("strata_ratelimit_decisions_total", [("policy", $0), ("result", result)]) }
        }
        self.allowed = decisions("allowed")
        self.refused = decisions("refused")
        self.shadowRefused = decisions("shadow_refused")
        self.storeErrors = counter("strata_ratelimit_store_errors_total", [])
        if let factory {
            self.storeDuration = Timer(label: "strata_ratelimit_store_duration_seconds", factory: factory)
        } else {
            self.storeDuration = Timer(label: "strata_ratelimit_store_duration_seconds")
        }
    }
}
