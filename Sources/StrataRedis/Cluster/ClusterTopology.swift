import Logging
import NIOCore
import Synchronization

/// Which node serves which slot in a Redis Cluster, and the pool of each node.
///
/// The map comes from `CLUSTER SHARDS` (Redis 7), or `CLUSTER SLOTS` from servers without it.
/// A `MOVED` answer updates its slot at once and refreshes the whole map in the background;
/// refreshes are single-flight.
final class ClusterTopology: Sendable {
    private let seeds: [RedisConfiguration.Endpoint]
    private let makePool: @Sendable (RedisConfiguration.Endpoint) -> RedisNodePool
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        /// Node index per slot; -1 while unknown.
        var slots = [Int](repeating: -1, count: HashSlot.count)
        var nodes: [RedisConfiguration.Endpoint] = []
        var pools: [RedisConfiguration.Endpoint: RedisNodePool] = [:]
        var refresh: Task<Void, any Error>?
        var mapped = false
    }

    init(
        seeds: [RedisConfiguration.Endpoint],
        logger: Logger,
        makePool: @escaping @Sendable (RedisConfiguration.Endpoint) -> RedisNodePool
    ) {
        self.seeds = seeds
        self.logger = logger
        self.makePool = makePool
    }

    /// The pool of the node at `endpoint`, made on first use.
    func pool(at endpoint: RedisConfiguration.Endpoint) -> RedisNodePool {
        self.state.withLock { state in
            if let pool = state.pools[endpoint] { return pool }
            let pool = self.makePool(endpoint)
            state.pools[endpoint] = pool
            return pool
        }
    }

    /// The pool serving `key`'s slot (any node for a command without a key).
    func pool(for key: ByteBuffer?) async throws -> RedisNodePool {
        if let pool = self.mappedPool(for: key) { return pool }
        if !self.state.withLock({ $0.mapped }) {
            try await self.refresh()
            if let pool = self.mappedPool(for: key) { return pool }
        }
        throw RedisClientError(.clusterUnavailable, mayHaveRun: false, message: "no node serves the key's slot")
    }

    /// The pool of the node the map gives for `key` (any node without a key), with no wait:
    /// `nil` before the first map, or for a slot no node serves.
    func mappedPool(for key: ByteBuffer?) -> RedisNodePool? {
        let endpoint = self.state.withLock { state -> RedisConfiguration.Endpoint? in
            guard state.mapped else { return nil }
            guard let key else { return state.nodes.randomElement() }
            let index = state.slots[Int(HashSlot(key: key).rawValue)]
            return index >= 0 ? state.nodes[index] : nil
        }
        return endpoint.map { self.pool(at: $0) }
    }

    /// Every master node, for commands that visit each (SCAN).
    func masters() async throws -> [RedisConfiguration.Endpoint] {
        if !self.state.withLock({ $0.mapped }) { try await self.refresh() }
        return self.state.withLock { state in
            Set(state.slots.filter { $0 >= 0 }).sorted().map { state.nodes[$0] }
        }
    }

    /// Records a `MOVED` answer and refreshes the map in the background.
    func moved(slot: Int, to endpoint: RedisConfiguration.Endpoint) {
        self.state.withLock { state in
            guard (0..<HashSlot.count).contains(slot) else { return }
            let index: Int
            if let existing = state.nodes.firstIndex(of: endpoint) {
                index = existing
            } else {
                state.nodes.append(endpoint)
                index = state.nodes.count - 1
            }
            state.slots[slot] = index
        }
        self.logger.debug("cluster slot moved", metadata: ["slot": "\(slot)", "node": "\(endpoint)"])
        Task { try? await self.refresh() }
    }

    /// Reloads the slot map from the first node that answers.
    func refresh() async throws {
        let task = self.state.withLock { state -> Task<Void, any Error> in
            if let running = state.refresh { return running }
            let task = Task { try await self.loadMap() }
            state.refresh = task
            return task
        }
        defer { self.state.withLock { $0.refresh = nil } }
        try await task.value
    }

    private func loadMap() async throws {
        let candidates = self.state.withLock { state in state.nodes } + self.seeds
        var lastError: (any Error)?
        for endpoint in candidates {
            do {
                let connection = try await self.pool(at: endpoint).connection()
                var shards = RedisCommand("CLUSTER")
                shards.append("SHARDS")
                var map: [(ClosedRange<Int>, RedisConfiguration.Endpoint)]
                let reply = try await connection.send(shards)
                if case .error = reply {
                    var slots = RedisCommand("CLUSTER")
                    slots.append("SLOTS")
                    map = try Self.parseSlots(try await connection.send(slots), askedNode: endpoint)
                } else {
                    map = try Self.parseShards(reply, askedNode: endpoint)
                }
                self.install(map)
                return
            } catch {
                lastError = error
            }
        }
        throw RedisClientError(
            .clusterUnavailable, mayHaveRun: false,
            message: "no cluster node gave its slot map: \(lastError.map { "\($0)" } ?? "no nodes")")
    }

    private func install(_ map: [(ClosedRange<Int>, RedisConfiguration.Endpoint)]) {
        let changed = self.state.withLock { state -> Bool in
            var nodes: [RedisConfiguration.Endpoint] = []
            var slots = [Int](repeating: -1, count: HashSlot.count)
            for (range, endpoint) in map {
                let index: Int
                if let existing = nodes.firstIndex(of: endpoint) {
                    index = existing
                } else {
                    nodes.append(endpoint)
                    index = nodes.count - 1
                }
                for slot in range where slot < HashSlot.count { slots[slot] = index }
            }
            let changed =
                !state.mapped
                || slots.map { $0 >= 0 ? nodes[$0] : nil }
                    != state.slots.map {
                        $0 >= 0 ? state.nodes[$0] : nil
                    }
            state.nodes = nodes
            state.slots = slots
            state.mapped = true
            return changed
        }
        if changed {
            self.logger.debug("cluster slot map loaded", metadata: ["masters": "\(Set(map.map(\.1)).count)"])
        }
    }

    private static func invalid(_ why: String) -> RedisClientError {
        RedisClientError(.unexpectedReply, mayHaveRun: true, message: "cluster map: \(why)")
    }

    /// `CLUSTER SHARDS`: per shard, `slots` (start/end pairs) and `nodes` (one is `master`).
    static func parseShards(
        _ reply: RESPValue, askedNode: RedisConfiguration.Endpoint
    ) throws -> [(ClosedRange<Int>, RedisConfiguration.Endpoint)] {
        guard let shards = reply.elements else { throw Self.invalid("CLUSTER SHARDS is not a list") }
        var map: [(ClosedRange<Int>, RedisConfiguration.Endpoint)] = []
        for shard in shards {
            guard let fields = shard.pairs else { throw Self.invalid("a shard is not a map") }
            func field(_ name: String, in pairs: [RESPMapEntry]) -> RESPValue? {
                pairs.first { $0.key.string == name }?.value
            }
            guard let slots = field("slots", in: fields)?.elements, let nodes = field("nodes", in: fields)?.elements
            else {
                throw Self.invalid("a shard without slots or nodes")
            }
            let master = nodes.compactMap(\.pairs).first { field("role", in: $0)?.string == "master" }
            guard let master, let port = field("port", in: master)?.int else { continue }
            var host = field("endpoint", in: master)?.string ?? ""
            if host.isEmpty || host == "?" { host = field("ip", in: master)?.string ?? "" }
            let endpoint = Self.endpoint(host: host, port: port, askedNode: askedNode)
            var index = 0
            while index + 1 < slots.count {
                guard let start = slots[index].int, let end = slots[index + 1].int, start <= end else {
                    throw Self.invalid("a slot range that does not parse")
                }
                map.append((start...end, endpoint))
                index += 2
            }
        }
        return map
    }

    /// `CLUSTER SLOTS`: `[start, end, [host, port, id], replicas...]` per range.
    static func parseSlots(
        _ reply: RESPValue, askedNode: RedisConfiguration.Endpoint
    ) throws -> [(ClosedRange<Int>, RedisConfiguration.Endpoint)] {
        guard let ranges = reply.elements else { throw Self.invalid("CLUSTER SLOTS is not a list") }
        return try ranges.map { range in
            guard let parts = range.elements, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                start <= end, let master = parts[2].elements, master.count >= 2, let port = master[1].int
            else { throw Self.invalid("a slot range that does not parse") }
            return (start...end, Self.endpoint(host: master[0].string ?? "", port: port, askedNode: askedNode))
        }
    }

    /// An empty host means "the node you asked" (the cluster specification).
    private static func endpoint(
        host: String, port: Int, askedNode: RedisConfiguration.Endpoint
    ) -> RedisConfiguration.Endpoint {
        if host.isEmpty, case .tcp(let askedHost, _) = askedNode { return .tcp(host: askedHost, port: port) }
        return .tcp(host: host, port: port)
    }

    var allPools: [RedisNodePool] { self.state.withLock { Array($0.pools.values) } }
}
