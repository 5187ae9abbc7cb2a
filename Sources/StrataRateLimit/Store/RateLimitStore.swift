/// One policy's part of a decision: its numbers, the key the request counts under, and whether
/// it only observes (shadow mode).
public struct QuotaCheck: Sendable, Hashable {
    /// The quota.
    public var limits: QuotaLimits
    /// Whose units.
    public var key: RateLimitKey
    /// A shadow check is decided and reported, and never refuses.
    public var shadow: Bool

    /// Creates a check.
    public init(limits: QuotaLimits, key: RateLimitKey, shadow: Bool = false) {
        self.limits = limits
        self.key = key
        self.shadow = shadow
    }
}

/// Where quota state lives: ``MemoryRateLimitStore`` in one process, `RedisRateLimitStore`
/// (StrataRateLimitRedis) across instances.
///
/// Every store decides the checks of one request **as one step**:
/// - if any enforced check refuses, no check spends anything;
/// - otherwise every check that allows spends `cost`, and a shadow check that would refuse
///   spends nothing (as if it were enforced and the request had gone elsewhere).
///
/// Outcomes come back in the order of the checks.
public protocol RateLimitStore: Sendable {
    /// Decides and, when allowed, spends `cost` units of every check.
    func acquire(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome]

    /// Gives back `cost` units spent by an earlier ``acquire(_:cost:)`` (a skipped response).
    func refund(_ checks: [QuotaCheck], cost: Int) async throws

    /// What ``acquire(_:cost:)`` would decide for `cost` units, spending nothing.
    func peek(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome]

    /// Forgets `key`'s state under `limits`: its quota is whole again.
    func reset(_ limits: QuotaLimits, key: RateLimitKey) async throws
}

/// Why a store could not decide.
public enum RateLimitStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store did not answer within its timeout.
    case timedOut(Duration)
    /// The store answered something this version does not understand.
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .timedOut(let limit): "the rate-limit store did not answer within \(limit)"
        case .unexpectedReply(let reply): "the rate-limit store answered something unexpected: \(reply)"
        }
    }
}
