public import Strata
import Synchronization

/// Quota state in this process: sharded, bounded, and exact under concurrency.
///
/// - **Sharded.** Keys are spread over shards, each behind its own lock; every policy of one
///   key lives in the same shard, so a request's checks on one key are decided under one lock.
///   Checks on keys in different shards are decided shard by shard, and the units a later
///   refusal makes moot are given back: a limit is never exceeded, and a request refused
///   elsewhere may hold units for the microseconds until they are returned.
/// - **Bounded.** At most `maxKeys` states. A state that has become the same as no state
///   (a GCRA key whose bucket refilled, a window two windows old) is dropped when its shard
///   is full, which loses nothing. If the shard is still full, the state closest to idle among a
///   sample is dropped and counted in ``evictions``: that key gets a fresh quota, so size
///   `maxKeys` for your active clients.
/// - **No allocation** deciding a single check for a key that exists.
public final class MemoryRateLimitStore: RateLimitStore {
    /// A policy's state for one key. Hashed by the policy name's hash computed once at init,
    /// so a decision hashes the key, not the name's bytes.
    struct EntryKey: Hashable {
        let nameHash: Int
        let name: String
        let key: RateLimitKey

        init(_ limits: QuotaLimits, _ key: RateLimitKey) {
            self.nameHash = limits.nameHash
            self.name = limits.name
            self.key = key
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.nameHash)
            hasher.combine(self.key)
        }

        static func == (lhs: EntryKey, rhs: EntryKey) -> Bool {
            lhs.nameHash == rhs.nameHash && lhs.key == rhs.key && lhs.name == rhs.name
        }
    }

    struct Entry {
        var state: QuotaState
        var idleAt: Int64
    }

    struct Shard {
        var entries: [EntryKey: Entry] = [:]
        var evictions = 0
    }

    final class ShardBox: Sendable {
        let shard: Mutex<Shard>
        /// Keeps two shards' locks off one cache line: without it, two cores deciding for
        /// different keys in neighbouring shards would bounce the line between them.
        private let padding: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        init() { self.shard = Mutex(Shard()) }
    }

    private let shards: [ShardBox]
    private let shardMask: UInt64
    private let keysPerShard: Int
    let clock: any WallClock

    /// Creates a store.
    ///
    /// - Parameters:
    ///   - maxKeys: States kept at most (key × policy), spread evenly over the shards.
    ///   - shards: Locks the keys are spread over (rounded up to a power of two).
    ///   - clock: The time quotas are computed at.
    public init(maxKeys: Int = 100_000, shards: Int = 64, clock: some WallClock = SystemWallClock()) {
        var count = 1
        while count < max(1, shards) { count <<= 1 }
        self.shards = (0..<count).map { _ in ShardBox() }
        self.shardMask = UInt64(count - 1)
        self.keysPerShard = max(8, (max(1, maxKeys) + count - 1) / count)
        self.clock = clock
    }

    /// States dropped before they were idle because a shard was full.
    public var evictions: Int {
        self.shards.reduce(0) { total, box in total + box.shard.withLock { $0.evictions } }
    }

    /// States held now.
    public var count: Int {
        self.shards.reduce(0) { total, box in total + box.shard.withLock { $0.entries.count } }
    }

    private func box(for key: RateLimitKey) -> ShardBox {
        self.shards[Int(truncatingIfNeeded: key.shardHash & self.shardMask)]
    }

    // MARK: One check, synchronously

    /// Decides one check at `now` and spends `cost` units if allowed: the hot path, with no
    /// allocation for a key that exists.
    public func acquire(_ limits: QuotaLimits, key: RateLimitKey, cost: Int = 1, now: Timestamp) -> QuotaOutcome {
        let entryKey = EntryKey(limits, key)
        let time = now.nanosecondsSince1970
        return self.box(for: key).shard.withLock { shard in
            // One hash lookup for a key that exists: read and write through its index.
            if let index = shard.entries.index(forKey: entryKey) {
                let (outcome, next) = limits.evaluate(shard.entries.values[index].state, now: time, cost: Int64(cost))
                if outcome.allowed { shard.entries.values[index] = Entry(state: next, idleAt: limits.idleAt(next)) }
                return outcome
            }
            let (outcome, next) = limits.evaluate(.fresh, now: time, cost: Int64(cost))
            if outcome.allowed { self.store(next, limits: limits, at: entryKey, in: &shard, now: time) }
            return outcome
        }
    }

    private func store(_ state: QuotaState, limits: QuotaLimits, at key: EntryKey, in shard: inout Shard, now: Int64) {
        let entry = Entry(state: state, idleAt: limits.idleAt(state))
        if let index = shard.entries.index(forKey: key) {
            shard.entries.values[index] = entry
            return
        }
        if shard.entries.count >= self.keysPerShard { Self.makeRoom(in: &shard, now: now) }
        shard.entries[key] = entry
    }

    /// Drops every idle state; if none was idle, the one closest to idle among a sample.
    private static func makeRoom(in shard: inout Shard, now: Int64) {
        let before = shard.entries.count
        shard.entries = shard.entries.filter { $0.value.idleAt > now }
        guard shard.entries.count == before else { return }
        var victim: EntryKey?
        var soonest = Int64.max
        for (key, entry) in shard.entries.prefix(16) where entry.idleAt < soonest {
            victim = key
            soonest = entry.idleAt
        }
        if let victim {
            shard.entries[victim] = nil
            shard.evictions += 1
        }
    }

    // MARK: RateLimitStore

    public func acquire(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome] {
        self.acquire(checks, cost: cost, now: self.clock.now())
    }

    /// ``acquire(_:cost:)`` at a given time.
    public func acquire(_ checks: [QuotaCheck], cost: Int, now: Timestamp) -> [QuotaOutcome] {
        let time = now.nanosecondsSince1970
        if checks.count == 1, !checks[0].shadow {
            return [self.acquire(checks[0].limits, key: checks[0].key, cost: cost, now: now)]
        }
        var outcomes = [QuotaOutcome](
            repeating: QuotaOutcome(allowed: true, remaining: 0, reset: 0, retryAfter: 0), count: checks.count)
        // Checks grouped by shard, in the order their shards first appear.
        var groups: [(box: ShardBox, indices: [Int])] = []
        for (index, check) in checks.enumerated() {
            let box = self.box(for: check.key)
            if let group = groups.firstIndex(where: { $0.box === box }) {
                groups[group].indices.append(index)
            } else {
                groups.append((box, [index]))
            }
        }
        var spent: [Int] = []
        for group in groups {
            let refused = group.box.shard.withLock { shard -> Bool in
                var nextStates: [(Int, QuotaState)] = []
                var refused = false
                for index in group.indices {
                    let check = checks[index]
                    let key = EntryKey(check.limits, check.key)
                    let state = shard.entries[key]?.state ?? .fresh
                    let (outcome, next) = check.limits.evaluate(state, now: time, cost: Int64(cost))
                    outcomes[index] = outcome
                    if outcome.allowed {
                        nextStates.append((index, next))
                    } else if !check.shadow {
                        refused = true
                    }
                }
                guard !refused else { return true }
                for (index, state) in nextStates {
                    let check = checks[index]
                    self.store(
                        state, limits: check.limits, at: EntryKey(check.limits, check.key),
                        in: &shard, now: time)
                    spent.append(index)
                }
                return false
            }
            if refused {
                // An earlier shard's units were spent for a request that is refused: return them.
                self.refund(spent.map { checks[$0] }, cost: cost, now: now)
                return outcomes
            }
        }
        return outcomes
    }

    public func refund(_ checks: [QuotaCheck], cost: Int) async throws {
        self.refund(checks, cost: cost, now: self.clock.now())
    }

    /// ``refund(_:cost:)`` at a given time.
    public func refund(_ checks: [QuotaCheck], cost: Int, now: Timestamp) {
        let time = now.nanosecondsSince1970
        for check in checks {
            let key = EntryKey(check.limits, check.key)
            self.box(for: check.key).shard.withLock { shard in
                guard let entry = shard.entries[key] else { return }
                let state = check.limits.refund(entry.state, now: time, cost: Int64(cost))
                shard.entries[key] = Entry(state: state, idleAt: check.limits.idleAt(state))
            }
        }
    }

    public func peek(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome] {
        self.peek(checks, cost: cost, now: self.clock.now())
    }

    /// ``peek(_:cost:)`` at a given time.
    public func peek(_ checks: [QuotaCheck], cost: Int, now: Timestamp) -> [QuotaOutcome] {
        let time = now.nanosecondsSince1970
        return checks.map { check in
            let key = EntryKey(check.limits, check.key)
            let state = self.box(for: check.key).shard.withLock { $0.entries[key]?.state } ?? .fresh
            return check.limits.evaluate(state, now: time, cost: Int64(cost)).outcome
        }
    }

    public func reset(_ limits: QuotaLimits, key: RateLimitKey) async throws {
        let entryKey = EntryKey(limits, key)
        self.box(for: key).shard.withLock { shard in shard.entries[entryKey] = nil }
    }
}
