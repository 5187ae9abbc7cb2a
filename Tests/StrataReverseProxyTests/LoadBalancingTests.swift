import HTTPTypes
import NIOCore
import Synchronization
import Testing

@testable import StrataReverseProxy

/// Each policy's choices, checked exactly where the policy is deterministic and statistically
/// (with a fixed seed) where it is random.
@Suite struct LoadBalancingTests {
    static func nodes(_ count: Int, weights: [Int]? = nil) throws -> [UpstreamNode] {
        try (0..<count).map { index in
            let upstream = try Upstream("http://10.0.0.\(index + 1):80", weight: weights?[index] ?? 1)
            let settings = UpstreamPool.Settings(
                maxConnections: 1, connectTimeout: .seconds(1),
                handlerTimeouts: .init(
                    responseHead: .seconds(1), idle: .seconds(1), tick: .seconds(1), poolIdle: .seconds(1)),
                limits: ResponseParserLimits())
            return UpstreamNode(
                upstream: upstream, pool: UpstreamPool(upstream: upstream, settings: settings), passive: nil,
                breaker: nil)
        }
    }

    static func picks(
        _ set: UpstreamSet, _ policy: LoadBalancingPolicy, count: Int, key: (Int) -> [UInt8]? = { _ in nil },
        seed: UInt64 = 42
    ) -> [Int] {
        let counter = Atomic<UInt64>(0)
        let random = RandomSource(seed: seed)
        return (0..<count).map { index in
            guard
                let node = set.pick(
                    policy: policy, key: key(index), excluded: [], counter: counter, random: random, now: .now())
            else { return -1 }
            return set.nodes.firstIndex { $0 === node } ?? -1
        }
    }

    static func histogram(_ picks: [Int]) -> [Int: Int] {
        picks.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    @Test func roundRobinTakesEachInTurn() throws {
        let set = UpstreamSet(nodes: try Self.nodes(3), needsRing: false)
        #expect(Self.picks(set, .roundRobin, count: 7) == [0, 1, 2, 0, 1, 2, 0])
    }

    @Test func weightedRoundRobinIsExactAndInterleaved() throws {
        let set = UpstreamSet(nodes: try Self.nodes(3, weights: [5, 1, 1]), needsRing: false)
        let picks = Self.picks(set, .weightedRoundRobin, count: 700)
        #expect(Self.histogram(picks) == [0: 500, 1: 100, 2: 100])
        // Smooth: the heavy node never runs more than 5 times in a row.
        var run = 0
        var longest = 0
        for pick in picks {
            run = pick == 0 ? run + 1 : 0
            longest = max(longest, run)
        }
        #expect(longest <= 5)
        #expect(Array(picks.prefix(7)) == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func leastConnectionsTakesTheLeastLoadedPerWeight() throws {
        let nodes = try Self.nodes(3, weights: [1, 1, 4])
        nodes[0].active.store(3, ordering: .relaxed)
        nodes[1].active.store(1, ordering: .relaxed)
        nodes[2].active.store(6, ordering: .relaxed)  // 1.5 per unit of weight
        let set = UpstreamSet(nodes: nodes, needsRing: false)
        #expect(Set(Self.picks(set, .leastConnections, count: 10)) == [1])
        nodes[1].active.store(2, ordering: .relaxed)
        nodes[2].active.store(4, ordering: .relaxed)  // 1 per unit of weight: ties rotate
        #expect(Set(Self.picks(set, .leastConnections, count: 10)) == [2])
    }

    @Test func powerOfTwoChoicesIsEvenWhenIdleAndAvoidsTheLoaded() throws {
        let nodes = try Self.nodes(4)
        let set = UpstreamSet(nodes: nodes, needsRing: false)
        let idle = Self.histogram(Self.picks(set, .powerOfTwoChoices, count: 40_000))
        // Four equal nodes: each near 10 000 (a binomial's spread is about 87; 5 % is 23 sigma
        // off, and the seed is fixed).
        for index in 0..<4 { #expect(abs((idle[index] ?? 0) - 10_000) < 500, "\(idle)") }
        nodes[3].active.store(50, ordering: .relaxed)
        let loaded = Self.histogram(Self.picks(set, .powerOfTwoChoices, count: 40_000))
        // The loaded node wins no comparison, so it is never chosen.
        #expect(loaded[3] == nil)
        #expect(
            Self.picks(set, .powerOfTwoChoices, count: 50, seed: 7)
                == Self.picks(set, .powerOfTwoChoices, count: 50, seed: 7))
    }

    @Test func firstTakesTheFirstAvailable() throws {
        let set = UpstreamSet(nodes: try Self.nodes(3), needsRing: false)
        #expect(Set(Self.picks(set, .first, count: 5)) == [0])
    }

    @Test func consistentHashingKeepsKeysAndMovesAboutOneNthWhenANodeLeaves() throws {
        let nodes = try Self.nodes(5)
        let before = UpstreamSet(nodes: nodes, needsRing: true)
        let keys = (0..<20_000).map { Array("user-\($0)".utf8) }
        let policy = LoadBalancingPolicy.consistentHash(.header(.authorization))
        let first = Self.picks(before, policy, count: keys.count, key: { keys[$0] })
        #expect(Self.picks(before, policy, count: keys.count, key: { keys[$0] }) == first)
        // Spread: each of 5 nodes near 4 000 (virtual nodes keep it within ±25 %).
        for (_, count) in Self.histogram(first) { #expect(count > 3_000 && count < 5_000) }
        // Node 2 leaves: only its keys move, and they are about a fifth of all.
        let after = UpstreamSet(nodes: nodes.enumerated().filter { $0.offset != 2 }.map(\.element), needsRing: true)
        let second = Self.picks(after, policy, count: keys.count, key: { keys[$0] }).map { index in
            after.nodes[index] === nodes[index >= 2 ? index + 1 : index] ? (index >= 2 ? index + 1 : index) : -1
        }
        var moved = 0
        for (old, new) in zip(first, second) where old != new {
            moved += 1
            #expect(old == 2, "a key moved off a node that stayed")
        }
        let fraction = Double(moved) / Double(keys.count)
        #expect(fraction > 0.15 && fraction < 0.25, "moved \(fraction)")
    }

    @Test func boundedLoadSkipsANodeAboveTheBound() throws {
        let nodes = try Self.nodes(4)
        let set = UpstreamSet(nodes: nodes, needsRing: true)
        let policy = LoadBalancingPolicy.consistentHash(.uri, .boundedLoad(factor: 1.25))
        let key = Array("/hot".utf8)
        let home = try #require(Self.picks(set, policy, count: 1, key: { _ in key }).first)
        // The key's home is loaded past 1.25 × the mean: the key goes to the next node clockwise.
        nodes[home].active.store(10, ordering: .relaxed)
        let moved = try #require(Self.picks(set, policy, count: 1, key: { _ in key }).first)
        #expect(moved != home)
        nodes[home].active.store(0, ordering: .relaxed)
        #expect(Self.picks(set, policy, count: 1, key: { _ in key }).first == home)
    }

    @Test func unavailableAndTriedNodesAreSkipped() throws {
        let nodes = try Self.nodes(3)
        let set = UpstreamSet(nodes: nodes, needsRing: false)
        let counter = Atomic<UInt64>(0)
        let random = RandomSource(seed: 1)
        for _ in 0..<6 {
            let node = set.pick(
                policy: .roundRobin, key: nil, excluded: [nodes[0], nodes[2]], counter: counter, random: random,
                now: .now())
            #expect(node === nodes[1])
        }
        #expect(
            set.pick(policy: .roundRobin, key: nil, excluded: nodes, counter: counter, random: random, now: .now())
                == nil)
    }
}
