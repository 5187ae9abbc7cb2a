public import HTTPTypes
import NIOCore
import Synchronization

/// How the proxy picks an upstream for a request.
///
/// Every policy skips upstreams that are unhealthy, ejected or behind an open circuit breaker,
/// and those a retry already tried.
public enum LoadBalancingPolicy: Sendable {
    /// Each upstream in turn.
    case roundRobin
    /// In turn, in proportion to the weights, interleaved (nginx's smooth weighted round robin).
    case weightedRoundRobin
    /// The upstream with the fewest requests in flight per unit of weight.
    case leastConnections
    /// Two upstreams at random; the one with fewer requests in flight per unit of weight.
    case powerOfTwoChoices
    /// A key of the request picks the upstream, so one key keeps its upstream. When an upstream
    /// leaves, only its own keys move.
    case consistentHash(HashKey, ConsistentHashMode = .ring)
    /// The first available upstream in the order given: a primary and its fall-backs.
    case first
}

/// What a consistent-hashing policy hashes.
public enum HashKey: Sendable {
    /// A header field's value.
    case header(HTTPField.Name)
    /// A cookie's value.
    case cookie(String)
    /// The client's address (through ``ReverseProxyConfiguration/trustedProxies``).
    case clientAddress
    /// The request target, path and query.
    case uri
}

/// How consistent hashing places keys.
public enum ConsistentHashMode: Sendable {
    /// A hash ring with virtual nodes (100 per unit of weight).
    case ring
    /// The ring, skipping upstreams already above `factor` times the mean load
    /// (consistent hashing with bounded loads); `1.25` is a common factor.
    case boundedLoad(factor: Double)
}

/// The upstreams in use, and what the policies keep about them. Replaced whole by
/// ``ReverseProxy/update(upstreams:)``.
final class UpstreamSet: Sendable {
    let nodes: [UpstreamNode]
    /// Sorted ring points and the node index each belongs to.
    let ring: [(point: UInt64, node: Int)]
    private let smoothWeights: Mutex<[Int]>

    init(nodes: [UpstreamNode], needsRing: Bool) {
        self.nodes = nodes
        var ring: [(point: UInt64, node: Int)] = []
        if needsRing {
            for (index, node) in nodes.enumerated() {
                let name = node.upstream.description
                for replica in 0..<(100 * node.upstream.weight) {
                    ring.append((Hashing.hash(Array("\(name)#\(replica)".utf8)), index))
                }
            }
            ring.sort { $0.point < $1.point }
        }
        self.ring = ring
        self.smoothWeights = Mutex(Array(repeating: 0, count: nodes.count))
    }

    /// Picks an available node not in `excluded`.
    func pick(
        policy: LoadBalancingPolicy,
        key: [UInt8]?,
        excluded: [UpstreamNode],
        counter: borrowing Atomic<UInt64>,
        random: RandomSource,
        now: NIODeadline
    ) -> UpstreamNode? {
        let count = self.nodes.count
        guard count > 0 else { return nil }
        func usable(_ index: Int) -> Bool {
            let node = self.nodes[index]
            return !excluded.contains { $0 === node } && node.isAvailable(now: now)
        }
        func load(_ index: Int) -> Double {
            Double(self.nodes[index].active.load(ordering: .relaxed)) / Double(self.nodes[index].upstream.weight)
        }
        switch policy {
        case .roundRobin:
            let start = Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt64(count))
            for offset in 0..<count where usable((start + offset) % count) {
                return self.nodes[(start + offset) % count]
            }
            return nil
        case .first:
            for index in 0..<count where usable(index) { return self.nodes[index] }
            return nil
        case .weightedRoundRobin:
            let candidates = (0..<count).filter(usable)
            guard !candidates.isEmpty else { return nil }
            let chosen = self.smoothWeights.withLock { current -> Int in
                var total = 0
                var best = candidates[0]
                for index in candidates {
                    let weight = self.nodes[index].upstream.weight
                    current[index] += weight
                    total += weight
                    if current[index] > current[best] { best = index }
                }
                current[best] -= total
                return best
            }
            return self.nodes[chosen]
        case .leastConnections:
            let start = Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt64(count))
            var best: Int?
            for offset in 0..<count {
                let index = (start + offset) % count
                guard usable(index) else { continue }
                if let current = best, load(current) <= load(index) { continue }
                best = index
            }
            return best.map { self.nodes[$0] }
        case .powerOfTwoChoices:
            let candidates = (0..<count).filter(usable)
            switch candidates.count {
            case 0: return nil
            case 1: return self.nodes[candidates[0]]
            default:
                let first = Int(random.next() % UInt64(candidates.count))
                var second = Int(random.next() % UInt64(candidates.count - 1))
                if second >= first { second += 1 }
                let a = candidates[first]
                let b = candidates[second]
                return self.nodes[load(b) < load(a) ? b : a]
            }
        case .consistentHash(_, let mode):
            guard !self.ring.isEmpty else { return nil }
            let point = Hashing.hash(key ?? [])
            var low = 0
            var high = self.ring.count
            while low < high {
                let middle = (low + high) / 2
                if self.ring[middle].point < point { low = middle + 1 } else { high = middle }
            }
            var limit = Double.infinity
            if case .boundedLoad(let factor) = mode {
                let available = (0..<count).filter(usable)
                guard !available.isEmpty else { return nil }
                let total = available.reduce(0) { $0 + self.nodes[$1].active.load(ordering: .relaxed) }
                limit = (factor * Double(total + 1) / Double(available.count)).rounded(.up)
            }
            var seen = 0
            for step in 0..<self.ring.count {
                let index = self.ring[(low + step) % self.ring.count].node
                guard usable(index) else { continue }
                if Double(self.nodes[index].active.load(ordering: .relaxed)) < limit { return self.nodes[index] }
                seen += 1
                if seen > 4 * count { break }
            }
            // Every node is over the bound: the least loaded usable one.
            return (0..<count).filter(usable).min { load($0) < load($1) }.map { self.nodes[$0] }
        }
    }
}

/// A 64-bit hash for ring points and keys: FNV-1a, then a MurmurHash3 finaliser to spread it.
enum Hashing {
    static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
}

/// SplitMix64 on an atomic state: seedable, so tests can fix the choices.
final class RandomSource: Sendable {
    private let state: Atomic<UInt64>

    init(seed: UInt64?) {
        self.state = Atomic(seed ?? UInt64.random(in: .min ... .max))
    }

    func next() -> UInt64 {
        var z = self.state.wrappingAdd(0x9e37_79b9_7f4a_7c15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
