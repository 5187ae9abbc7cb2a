public import CoreMetrics
import NIOCore
public import Strata
import Synchronization

/// A cache store in this process's memory, bounded in bytes, that forgets the least recently
/// used URLs first and drops entries past their ``CachedResponse/storedUntil``.
///
/// Bodies are kept as the `ByteBuffer`s they arrived in and handed out without copying, so a
/// hit costs no allocation for its body.
///
/// ```swift
/// let store = MemoryCacheStore(maximumBytes: 256 << 20)
/// ```
///
/// **Shards.** A large store is split into shards by key, each with its own lock and its own
/// recency list, so requests on different event loops rarely wait for each other (with one
/// lock, a miss's write, and the eviction it causes, held the other loop's lookups up). The
/// byte bound is one for the whole store; a write that crosses it evicts the least recently
/// used URLs of its own shard first. With keys spread evenly the shards' lists age alike, so
/// the store forgets nearly what one list would. A store under 4 MiB has one shard: exactly
/// least-recently-used.
public final class MemoryCacheStore: CacheStore {
    /// The most bytes (bodies, fields and bookkeeping, approximately) the store holds.
    public let maximumBytes: Int
    /// The most variants kept per URL; the least recently stored goes first.
    public let maximumVariants: Int
    /// How many shards the keys are spread over.
    public var shardCount: Int { self.shards.count }
    private let clock: any WallClock
    private let shards: [Shard]
    /// The bytes held by all shards together.
    private let totalBytes = Atomic<Int>(0)
    private let evictions: Counter

    /// One shard's lock and state.
    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    /// Creates a store.
    ///
    /// - Parameters:
    ///   - maximumBytes: The store's size bound (default 64 MiB).
    ///   - maximumVariants: The most variants per URL (default 32).
    ///   - shards: How many shards to spread the keys over; by default one per 4 MiB of
    ///     `maximumBytes`, at most 16 (a 64 MiB store has 16, a store under 8 MiB one).
    ///   - clock: Decides when entries have expired.
    ///   - metricsFactory: Where the eviction counter (`strata_cache_evictions_total`) goes;
    ///     `nil` for the process's bootstrapped factory.
    public init(
        maximumBytes: Int = 64 << 20, maximumVariants: Int = 32, shards: Int? = nil,
        clock: some WallClock = SystemWallClock(), metricsFactory: (any MetricsFactory)? = nil
    ) {
        precondition(maximumBytes > 0 && maximumVariants > 0, "a memory cache store needs room")
        let shardCount = shards ?? max(1, min(16, maximumBytes / (4 << 20)))
        precondition(shardCount >= 1, "a memory cache store needs at least one shard")
        self.maximumBytes = maximumBytes
        self.maximumVariants = maximumVariants
        self.clock = clock
        self.shards = (0..<shardCount).map { _ in Shard() }
        let dimensions = [("store", "memory")]
        if let metricsFactory {
            self.evictions = Counter(
                label: "strata_cache_evictions_total", dimensions: dimensions, factory: metricsFactory)
        } else {
            self.evictions = Counter(label: "strata_cache_evictions_total", dimensions: dimensions)
        }
    }

    /// The bytes held now (approximately).
    public var currentBytes: Int { self.totalBytes.load(ordering: .relaxed) }

    /// The number of URLs held now.
    public var count: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.index.count } } }

    /// The key's 64-bit hash (this process's seed) and the index of its shard. The shards
    /// index keys by this hash, so a lookup or a removal hashes the key once and never again.
    private func locate(_ key: String) -> (hash: UInt64, shard: Int) {
        var hasher = Hasher()
        hasher.combine(key)
        let hash = UInt64(bitPattern: Int64(hasher.finalize()))
        return (hash, Int(hash % UInt64(self.shards.count)))
    }

    public func variants(for key: String) async throws -> [CachedResponse] {
        let now = self.clock.now()
        let (hash, shard) = self.locate(key)
        let (variants, freed, removed) = self.shards[shard].state.withLock {
            state -> ([CachedResponse], Int, Node?) in
            guard let slot = state.slot(for: key, hash: hash), let variants = state.nodes[slot]?.variants else {
                return ([], 0, nil)
            }
            state.touch(slot)
            // Usually every variant is live: the stored array is returned as it is, uncopied.
            if variants.allSatisfy({ $0.storedUntil > now }) { return (variants, 0, nil) }
            let live = variants.filter { $0.storedUntil > now }
            guard live.isEmpty, let node = state.remove(slot: slot) else { return (live, 0, nil) }
            return ([], node.bytes, node)
        }
        if freed > 0 { self.totalBytes.subtract(freed, ordering: .relaxed) }
        withExtendedLifetime(removed) {}  // an expired node is released here, outside the lock
        return variants
    }

    public func store(_ response: CachedResponse, for key: String) async throws {
        let size = response.approximateSize
        guard size <= self.maximumBytes else { return }
        let (hash, shard) = self.locate(key)
        let (delta, displaced) = self.shards[shard].state.withLock { state -> (Int, Node?) in
            let before = state.bytes
            var displaced: Node?
            let slot: Int
            if let existing = state.index[hash] {
                if state.nodes[existing]?.key == key {
                    slot = existing
                } else {
                    // Another key with the same 64-bit hash: a cache may forget it.
                    displaced = state.remove(slot: existing)
                    slot = state.insert(key: key, hash: hash)
                }
            } else {
                slot = state.insert(key: key, hash: hash)
            }
            state.replaceVariant(response, size: size, in: slot, maximumVariants: self.maximumVariants)
            state.touch(slot)
            return (state.bytes - before, displaced)
        }
        withExtendedLifetime(displaced) {}  // released here, outside the lock
        let total = self.totalBytes.add(delta, ordering: .relaxed).newValue
        if total > self.maximumBytes { self.evict(startingAt: shard, keeping: hash) }
    }

    /// Evicts least recently used URLs until the store is within its bound: from `first`'s
    /// shard while it has any, then from the next ones. The entry just stored (`keeping`) is
    /// evicted last of all, never by its own write. Evicted entries are released outside the
    /// locks.
    private func evict(startingAt first: Int, keeping hash: UInt64) {
        var evicted = 0
        var shard = first
        var fruitless = 0
        while self.totalBytes.load(ordering: .relaxed) > self.maximumBytes && fruitless < self.shards.count {
            let victim = self.shards[shard].state.withLock { state -> Node? in
                guard let slot = state.leastRecent, state.nodes[slot]?.hash != hash else { return nil }
                return state.remove(slot: slot)
            }
            if let victim {
                self.totalBytes.subtract(victim.bytes, ordering: .relaxed)
                evicted += 1
                fruitless = 0
            } else {
                fruitless += 1
                shard = (shard + 1) % self.shards.count
            }
        }
        if evicted > 0 { self.evictions.increment(by: Int64(evicted)) }
    }

    public func updateMetadata(_ response: CachedResponse, for key: String) async throws {
        let (hash, shard) = self.locate(key)
        let delta = self.shards[shard].state.withLock { state -> Int in
            guard let slot = state.slot(for: key, hash: hash),
                let position = state.nodes[slot]?.variants.firstIndex(where: { $0.variantKey == response.variantKey }),
                let old = state.nodes[slot]?.variants[position]
            else { return 0 }
            var updated = response
            updated.body = old.body
            updated.bodyLength = old.bodyLength
            let delta = updated.approximateSize - old.approximateSize
            state.nodes[slot]?.variants[position] = updated
            state.nodes[slot]?.bytes += delta
            state.bytes += delta
            state.indexTags(of: slot)
            return delta
        }
        if delta != 0 { self.totalBytes.add(delta, ordering: .relaxed) }
    }

    public func remove(_ key: String) async throws {
        let (hash, shard) = self.locate(key)
        let removed = self.shards[shard].state.withLock { state -> Node? in
            guard let slot = state.slot(for: key, hash: hash) else { return nil }
            return state.remove(slot: slot)
        }
        if let removed { self.totalBytes.subtract(removed.bytes, ordering: .relaxed) }
    }

    public func removeTagged(_ tag: String) async throws -> Int {
        var removed = 0
        for shard in self.shards {
            let (count, freed) = shard.state.withLock { state -> (Int, Int) in
                let keys = state.tags[tag] ?? []
                var count = 0
                var freed = 0
                for key in keys {
                    var hasher = Hasher()
                    hasher.combine(key)
                    let hash = UInt64(bitPattern: Int64(hasher.finalize()))
                    if let slot = state.slot(for: key, hash: hash), let node = state.remove(slot: slot) {
                        count += 1
                        freed += node.bytes
                    }
                }
                state.tags[tag] = nil
                return (count, freed)
            }
            removed += count
            if freed > 0 { self.totalBytes.subtract(freed, ordering: .relaxed) }
        }
        return removed
    }

    public func removeAll() async throws {
        for shard in self.shards {
            let old = shard.state.withLock { state -> State in
                var old = State()
                swap(&old, &state)
                return old
            }
            self.totalBytes.subtract(old.bytes, ordering: .relaxed)
        }
    }
}

extension MemoryCacheStore {
    /// One URL's variants, a node of the recency list.
    struct Node {
        var key: String
        /// The key's hash, its entry in the index.
        var hash: UInt64
        var variants: [CachedResponse]
        var bytes: Int
        var tags: Set<String>
        var previous: Int
        var next: Int
    }

    /// One shard: the index (key hash to slot), the recency list (most recent at `head`) and
    /// the tag index. Nodes are changed in place (`nodes[slot]?....`), never copied out and
    /// back, so their arrays are never copied on write.
    struct State {
        var index: [UInt64: Int] = [:]
        var nodes: [Node?] = []
        var free: [Int] = []
        var head = -1
        var tail = -1
        var bytes = 0
        var tags: [String: Set<String>] = [:]

        var leastRecent: Int? { self.tail >= 0 ? self.tail : nil }

        /// The slot of `key`, if it is held (its hash found and the key itself equal).
        func slot(for key: String, hash: UInt64) -> Int? {
            guard let slot = self.index[hash], self.nodes[slot]?.key == key else { return nil }
            return slot
        }

        mutating func insert(key: String, hash: UInt64) -> Int {
            let node = Node(
                key: key, hash: hash, variants: [], bytes: key.utf8.count + 64, tags: [], previous: -1, next: -1)
            let slot: Int
            if let reused = self.free.popLast() {
                slot = reused
                self.nodes[slot] = node
            } else {
                slot = self.nodes.count
                self.nodes.append(node)
            }
            self.index[hash] = slot
            self.bytes += node.bytes
            self.linkAtHead(slot)
            return slot
        }

        mutating func replaceVariant(_ response: CachedResponse, size: Int, in slot: Int, maximumVariants: Int) {
            // Read through `nodes[slot]?` each time: a local copy of the array would make the
            // mutations below copy it.
            if let position = self.nodes[slot]?.variants.firstIndex(where: { $0.variantKey == response.variantKey }),
                let old = self.nodes[slot]?.variants[position].approximateSize
            {
                self.nodes[slot]?.bytes -= old
                self.bytes -= old
                self.nodes[slot]?.variants.remove(at: position)
            }
            while let count = self.nodes[slot]?.variants.count, count >= maximumVariants {
                guard let dropped = self.nodes[slot]?.variants.removeFirst() else { break }
                self.nodes[slot]?.bytes -= dropped.approximateSize
                self.bytes -= dropped.approximateSize
            }
            self.nodes[slot]?.variants.append(response)
            self.nodes[slot]?.bytes += size
            self.bytes += size
            self.indexTags(of: slot)
        }

        mutating func indexTags(of slot: Int) {
            guard let node = self.nodes[slot] else { return }
            // Most responses have no tags: nothing to index, nothing to build.
            if node.tags.isEmpty && node.variants.allSatisfy({ $0.tags.isEmpty }) { return }
            let tags = Set(node.variants.flatMap(\.tags))
            for tag in node.tags.subtracting(tags) { self.untag(tag, key: node.key) }
            for tag in tags.subtracting(node.tags) { self.tags[tag, default: []].insert(node.key) }
            self.nodes[slot]?.tags = tags
        }

        private mutating func untag(_ tag: String, key: String) {
            self.tags[tag]?.remove(key)
            if self.tags[tag]?.isEmpty == true { self.tags[tag] = nil }
        }

        /// Removes the node in `slot` and hands it back (to be released by the caller, outside
        /// the lock).
        mutating func remove(slot: Int) -> Node? {
            guard let node = self.nodes[slot] else { return nil }
            self.unlink(slot)
            for tag in node.tags { self.untag(tag, key: node.key) }
            self.index[node.hash] = nil
            self.bytes -= node.bytes
            self.nodes[slot] = nil
            self.free.append(slot)
            return node
        }

        mutating func touch(_ slot: Int) {
            guard self.head != slot else { return }
            self.unlink(slot)
            self.linkAtHead(slot)
        }

        private mutating func linkAtHead(_ slot: Int) {
            self.nodes[slot]?.previous = -1
            self.nodes[slot]?.next = self.head
            if self.head >= 0 { self.nodes[self.head]?.previous = slot }
            self.head = slot
            if self.tail < 0 { self.tail = slot }
        }

        private mutating func unlink(_ slot: Int) {
            guard let previous = self.nodes[slot]?.previous, let next = self.nodes[slot]?.next else { return }
            if previous >= 0 { self.nodes[previous]?.next = next } else { self.head = next }
            if next >= 0 { self.nodes[next]?.previous = previous } else { self.tail = previous }
            self.nodes[slot]?.previous = -1
            self.nodes[slot]?.next = -1
        }
    }
}
