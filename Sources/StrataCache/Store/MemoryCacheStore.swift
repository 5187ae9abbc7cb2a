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
public final class MemoryCacheStore: CacheStore {
    /// The most bytes (bodies, fields and bookkeeping, approximately) the store holds.
    public let maximumBytes: Int
    /// The most variants kept per URL; the least recently stored goes first.
    public let maximumVariants: Int
    private let clock: any WallClock
    private let state: Mutex<State>
    private let evictions: Counter

    /// Creates a store.
    ///
    /// - Parameters:
    ///   - maximumBytes: The store's size bound (default 64 MiB).
    ///   - maximumVariants: The most variants per URL (default 32).
    ///   - clock: Decides when entries have expired.
    ///   - metricsFactory: Where the eviction counter (`strata_cache_evictions_total`) goes;
    ///     `nil` for the process's bootstrapped factory.
    public init(
        maximumBytes: Int = 64 << 20, maximumVariants: Int = 32, clock: some WallClock = SystemWallClock(),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        precondition(maximumBytes > 0 && maximumVariants > 0, "a memory cache store needs room")
        self.maximumBytes = maximumBytes
        self.maximumVariants = maximumVariants
        self.clock = clock
        self.state = Mutex(State())
        let dimensions = [("store", "memory")]
        if let metricsFactory {
            self.evictions = Counter(
                label: "strata_cache_evictions_total", dimensions: dimensions, factory: metricsFactory)
        } else {
            self.evictions = Counter(label: "strata_cache_evictions_total", dimensions: dimensions)
        }
    }

    /// The bytes held now (approximately).
    public var currentBytes: Int { self.state.withLock { $0.bytes } }

    /// The number of URLs held now.
    public var count: Int { self.state.withLock { $0.index.count } }

    public func variants(for key: String) async throws -> [CachedResponse] {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard let slot = state.index[key], let node = state.nodes[slot] else { return [] }
            state.touch(slot)
            // Usually every variant is live: the stored array is returned as it is, uncopied.
            if node.variants.allSatisfy({ $0.storedUntil > now }) { return node.variants }
            let live = node.variants.filter { $0.storedUntil > now }
            if live.isEmpty { state.remove(slot: slot) }
            return live
        }
    }

    public func store(_ response: CachedResponse, for key: String) async throws {
        let size = response.approximateSize
        guard size <= self.maximumBytes else { return }
        let evicted = self.state.withLock { state -> Int in
            let slot: Int
            if let existing = state.index[key] {
                slot = existing
            } else {
                slot = state.insert(key: key)
            }
            state.replaceVariant(response, size: size, in: slot, maximumVariants: self.maximumVariants)
            state.touch(slot)
            var evicted = 0
            while state.bytes > self.maximumBytes, let victim = state.leastRecent, victim != slot {
                state.remove(slot: victim)
                evicted += 1
            }
            return evicted
        }
        if evicted > 0 { self.evictions.increment(by: Int64(evicted)) }
    }

    public func updateMetadata(_ response: CachedResponse, for key: String) async throws {
        self.state.withLock { state in
            guard let slot = state.index[key], var node = state.nodes[slot],
                let position = node.variants.firstIndex(where: { $0.variantKey == response.variantKey })
            else { return }
            var updated = response
            updated.body = node.variants[position].body
            updated.bodyLength = node.variants[position].bodyLength
            let delta = updated.approximateSize - node.variants[position].approximateSize
            node.variants[position] = updated
            node.bytes += delta
            state.bytes += delta
            state.nodes[slot] = node
            state.indexTags(of: slot)
        }
    }

    public func remove(_ key: String) async throws {
        self.state.withLock { state in
            if let slot = state.index[key] { state.remove(slot: slot) }
        }
    }

    public func removeTagged(_ tag: String) async throws -> Int {
        self.state.withLock { state in
            let keys = state.tags[tag] ?? []
            var removed = 0
            for key in keys {
                if let slot = state.index[key] {
                    state.remove(slot: slot)
                    removed += 1
                }
            }
            state.tags[tag] = nil
            return removed
        }
    }

    public func removeAll() async throws {
        self.state.withLock { $0 = State() }
    }
}

extension MemoryCacheStore {
    /// One URL's variants, a node of the recency list.
    struct Node {
        var key: String
        var variants: [CachedResponse]
        var bytes: Int
        var tags: Set<String>
        var previous: Int
        var next: Int
    }

    /// The index, the recency list (most recent at `head`) and the tag index.
    struct State {
        var index: [String: Int] = [:]
        var nodes: [Node?] = []
        var free: [Int] = []
        var head = -1
        var tail = -1
        var bytes = 0
        var tags: [String: Set<String>] = [:]

        var leastRecent: Int? { self.tail >= 0 ? self.tail : nil }

        mutating func insert(key: String) -> Int {
            let node = Node(key: key, variants: [], bytes: key.utf8.count + 64, tags: [], previous: -1, next: -1)
            let slot: Int
            if let reused = self.free.popLast() {
                slot = reused
                self.nodes[slot] = node
            } else {
                slot = self.nodes.count
                self.nodes.append(node)
            }
            self.index[key] = slot
            self.bytes += node.bytes
            self.linkAtHead(slot)
            return slot
        }

        /// Mutates the node in its slot (optional chaining on the array's element): a copy of
        /// the node would share its variants, and appending would copy them all.
        mutating func replaceVariant(_ response: CachedResponse, size: Int, in slot: Int, maximumVariants: Int) {
            guard self.nodes[slot] != nil else { return }
            var removed = 0
            if let position = self.nodes[slot]?.variants.firstIndex(where: { $0.variantKey == response.variantKey }) {
                removed += self.nodes[slot]?.variants.remove(at: position).approximateSize ?? 0
            }
            while let count = self.nodes[slot]?.variants.count, count >= maximumVariants {
                removed += self.nodes[slot]?.variants.removeFirst().approximateSize ?? 0
            }
            self.nodes[slot]?.variants.append(response)
            self.nodes[slot]?.bytes += size - removed
            self.bytes += size - removed
            self.indexTags(of: slot)
        }

        mutating func indexTags(of slot: Int) {
            guard let node = self.nodes[slot] else { return }
            // Nothing tagged before or now, the usual case: no sets to build.
            if node.tags.isEmpty, node.variants.allSatisfy({ $0.tags.isEmpty }) { return }
            let tags = Set(node.variants.flatMap(\.tags))
            for tag in node.tags.subtracting(tags) { self.untag(tag, key: node.key) }
            for tag in tags.subtracting(node.tags) { self.tags[tag, default: []].insert(node.key) }
            self.nodes[slot]?.tags = tags
        }

        private mutating func untag(_ tag: String, key: String) {
            self.tags[tag]?.remove(key)
            if self.tags[tag]?.isEmpty == true { self.tags[tag] = nil }
        }

        mutating func remove(slot: Int) {
            guard let node = self.nodes[slot] else { return }
            self.unlink(slot)
            for tag in node.tags { self.untag(tag, key: node.key) }
            self.index[node.key] = nil
            self.bytes -= node.bytes
            self.nodes[slot] = nil
            self.free.append(slot)
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
            guard let node = self.nodes[slot] else { return }
            if node.previous >= 0 { self.nodes[node.previous]?.next = node.next } else { self.head = node.next }
            if node.next >= 0 { self.nodes[node.next]?.previous = node.previous } else { self.tail = node.previous }
            self.nodes[slot]?.previous = -1
            self.nodes[slot]?.next = -1
        }
    }
}
