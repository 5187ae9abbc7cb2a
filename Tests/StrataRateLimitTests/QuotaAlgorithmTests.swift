import Strata
import StrataTesting
import Testing

@testable import StrataRateLimit

/// The algorithms at every boundary, with a clock moved by hand.
@Suite struct QuotaAlgorithmTests {
    static let key = RateLimitKey("client")

    static func admitted(
        _ store: MemoryRateLimitStore, _ limits: QuotaLimits, _ count: Int, cost: Int = 1, at now: Timestamp
    ) -> Int {
        (0..<count).filter { _ in store.acquire(limits, key: Self.key, cost: cost, now: now).allowed }.count
    }

    @Test func gcraAdmitsTheBurstThenOneUnitPerInterval() throws {
        let limits = try QuotaLimits.gcra("burst", limit: 5, per: .seconds(1), burst: 10)
        let store = MemoryRateLimitStore()
        let start = Timestamp(secondsSince1970: 1_700_000_000)
        #expect(Self.admitted(store, limits, 10, at: start) == 10)
        let refused = store.acquire(limits, key: Self.key, now: start)
        #expect(!refused.allowed)
        #expect(refused.retryAfter == 200_000_000)
        #expect(refused.remaining == 0)
        // One nanosecond early is refused, the boundary itself admits exactly one.
        #expect(!store.acquire(limits, key: Self.key, now: start + .nanoseconds(199_999_999)).allowed)
        #expect(Self.admitted(store, limits, 3, at: start + .milliseconds(200)) == 1)
        // Sustained: ten seconds at the emission interval admit exactly one per 200 ms.
        var admitted = 0
        for step in 2...51 {
            admitted += Self.admitted(store, limits, 2, at: start + .milliseconds(200 * step))
        }
        #expect(admitted == 50)
    }

    @Test func gcraHasNoDoubleBurstAtAWindowBoundary() throws {
        // 100 a minute: a fixed window would let 100 through at 0:59.9 and 100 more at 1:00.
        let limits = try QuotaLimits.gcra("minute", limit: 100, per: .seconds(60))
        let store = MemoryRateLimitStore()
        let start = Timestamp(secondsSince1970: 1_700_000_040)
        #expect(Self.admitted(store, limits, 150, at: start + .milliseconds(59_900)) == 100)
        #expect(Self.admitted(store, limits, 150, at: start + .seconds(60)) == 0)
        // 600 ms per unit: at 1:00.5 exactly one unit has come back since 0:59.9.
        #expect(Self.admitted(store, limits, 150, at: start + .milliseconds(60_500)) == 1)
        // A whole minute later the bucket is full again, and no more.
        #expect(Self.admitted(store, limits, 150, at: start + .milliseconds(60_500 + 60_000)) == 100)
    }

    @Test func weightedCostsSpendSeveralUnits() throws {
        let limits = try QuotaLimits.gcra("burst", limit: 5, per: .seconds(1), burst: 10)
        let store = MemoryRateLimitStore()
        let now = Timestamp(secondsSince1970: 1_700_000_000)
        #expect(Self.admitted(store, limits, 3, cost: 5, at: now) == 2)
        let refused = store.acquire(limits, key: Self.key, cost: 5, now: now)
        #expect(refused.retryAfter == 1_000_000_000)
        // A request that costs more than the burst can never pass.
        let never = store.acquire(limits, key: RateLimitKey("other"), cost: 11, now: now)
        #expect(!never.allowed)
        #expect(never.retryAfter == 2_000_000_000)  // a full refill, the longest wait there is
    }

    @Test func slidingWindowWeighsThePreviousWindow() throws {
        let limits = try QuotaLimits.slidingWindow("minute", limit: 10, per: .seconds(60))
        let store = MemoryRateLimitStore()
        let windowStart = Timestamp(secondsSince1970: 1_700_000_040)  // a multiple of 60
        #expect(Self.admitted(store, limits, 15, at: windowStart + .seconds(59)) == 10)
        // Next window, previous weighted 1.0: nothing.
        let refused = store.acquire(limits, key: Self.key, now: windowStart + .seconds(60))
        #expect(!refused.allowed)
        // 10 × (60 − Δ)/60 + 1 ≤ 10 ⇔ Δ ≥ 6 s.
        #expect(refused.retryAfter == 6_000_000_000)
        #expect(!store.acquire(limits, key: Self.key, now: windowStart + .milliseconds(65_999)).allowed)
        #expect(Self.admitted(store, limits, 5, at: windowStart + .seconds(66)) == 1)
        // Halfway: 10 × 0.5 + 1 = 6 counted, so 4 more.
        #expect(Self.admitted(store, limits, 10, at: windowStart + .seconds(90)) == 4)
        // Two windows later nothing is left of either.
        #expect(Self.admitted(store, limits, 15, at: windowStart + .seconds(180)) == 10)
    }

    @Test func aRefusingPolicySpendsNothingOfTheOthers() throws {
        let tight = try QuotaLimits.gcra("tight", limit: 3, per: .seconds(3600))
        let loose = try QuotaLimits.gcra("loose", limit: 5, per: .seconds(3600))
        let store = MemoryRateLimitStore()
        let now = Timestamp(secondsSince1970: 1_700_000_000)
        let checks = [QuotaCheck(limits: tight, key: Self.key), QuotaCheck(limits: loose, key: Self.key)]
        let decisions = (0..<5).map { _ in store.acquire(checks, cost: 1, now: now) }
        #expect(decisions.filter { $0.allSatisfy(\.allowed) }.count == 3)
        #expect(store.peek([checks[1]], cost: 1, now: now)[0].remaining == 1)  // 5 − 3 spent − this one
    }

    @Test func unitsSpentOnAnotherShardAreGivenBackWhenALaterShardRefuses() throws {
        let perUser = try QuotaLimits.gcra("user", limit: 1, per: .seconds(3600))
        let perAddress = try QuotaLimits.gcra("address", limit: 10, per: .seconds(3600))
        let store = MemoryRateLimitStore(shards: 64)
        let now = Timestamp(secondsSince1970: 1_700_000_000)
        // Two keys in different shards, so the checks are decided one shard after the other.
        let address = RateLimitKey("203.0.113.7")
        let user = try #require(
            (0..<1000).lazy.map { RateLimitKey("user-\($0)") }.first {
                $0.shardHash & 63 != address.shardHash & 63
            })
        let checks = [QuotaCheck(limits: perAddress, key: address), QuotaCheck(limits: perUser, key: user)]
        let admitted = (0..<4).filter { _ in store.acquire(checks, cost: 1, now: now).allSatisfy(\.allowed) }.count
        #expect(admitted == 1)
        // The address quota was charged once, not four times.
        #expect(store.peek([checks[0]], cost: 1, now: now)[0].remaining == 8)
    }

    @Test func shadowPoliciesDecideButNeverRefuse() throws {
        let shadowed = try QuotaLimits.gcra("trial", limit: 2, per: .seconds(3600))
        let store = MemoryRateLimitStore()
        let now = Timestamp(secondsSince1970: 1_700_000_000)
        let check = QuotaCheck(limits: shadowed, key: Self.key, shadow: true)
        let outcomes = (0..<5).map { _ in store.acquire([check], cost: 1, now: now)[0] }
        #expect(outcomes.map(\.allowed) == [true, true, false, false, false])
    }

    @Test func resetAndPeek() async throws {
        let limits = try QuotaLimits.gcra("burst", limit: 2, per: .seconds(3600))
        let clock = ManualClock()
        let store = MemoryRateLimitStore(clock: clock)
        let check = QuotaCheck(limits: limits, key: Self.key)
        _ = try await store.acquire([check], cost: 2)
        #expect(try await store.peek([check], cost: 1)[0].allowed == false)
        #expect(try await store.peek([check], cost: 1)[0].allowed == false)  // peeking spends nothing
        try await store.reset(limits, key: Self.key)
        #expect(try await store.peek([check], cost: 1)[0].remaining == 1)
    }

    @Test func theMemoryStoreIsBoundedAndDropsIdleStatesLosslessly() throws {
        let limits = try QuotaLimits.gcra("burst", limit: 1, per: .seconds(1))
        let store = MemoryRateLimitStore(maxKeys: 8, shards: 1)
        let start = Timestamp(secondsSince1970: 1_700_000_000)
        for index in 0..<100 {
            _ = store.acquire(limits, key: RateLimitKey("client-\(index)"), now: start + .seconds(index * 2))
        }
        // Each state was idle (its bucket refilled) before the next key came: nothing was lost.
        #expect(store.count <= 8)
        #expect(store.evictions == 0)
        for index in 0..<100 {
            _ = store.acquire(limits, key: RateLimitKey("burst-\(index)"), now: start + .seconds(1000))
        }
        // All at once, none idle: the bound holds and the evictions are counted.
        #expect(store.count <= 8)
        #expect(store.evictions >= 92)
    }

    @Test func aThousandConcurrentRequestsForOneKeyAdmitExactlyTheLimit() async throws {
        let limits = try QuotaLimits.gcra("day", limit: 100, per: .seconds(86_400))
        let store = MemoryRateLimitStore()
        let check = QuotaCheck(limits: limits, key: Self.key)
        let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<1000 { group.addTask { try await store.acquire([check], cost: 1)[0].allowed } }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 100)
    }

    @Test func configurationIsValidatedWithTheFix() throws {
        #expect(throws: RateLimitConfigurationError.self) { try QuotaLimits.gcra("x", limit: 0, per: .seconds(1)) }
        #expect(throws: RateLimitConfigurationError.self) { try QuotaLimits.gcra("x", limit: 1, per: .zero) }
        #expect(throws: RateLimitConfigurationError.self) {
            try QuotaLimits.gcra("x", limit: 1, per: .seconds(1), burst: 0)
        }
        #expect(throws: RateLimitConfigurationError.self) {
            try QuotaLimits.gcra("x", limit: 1, per: .seconds(86_400), burst: 1000)
        }
        #expect(throws: RateLimitConfigurationError.self) {
            try QuotaLimits.slidingWindow("a\"b", limit: 1, per: .seconds(1))
        }
        do {
            _ = try QuotaLimits.gcra("x", limit: -1, per: .seconds(1))
            Issue.record("a negative limit was accepted")
        } catch {
            #expect(error.description.contains("limit -1 must be in 1...1_000_000_000"))
        }
    }
}
