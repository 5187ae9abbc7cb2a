import HTTPTypes
import NIOCore
import Strata
import StrataTestSupport
import StrataTesting
import Testing

@testable import StrataCache

/// Request collapsing: one origin request per cold key, waiters bounded in number and time.
@Suite struct CollapsingTests {
    /// Sends `count` concurrent GETs for `path`; returns their responses.
    private func concurrent(_ cache: CacheHarness, _ count: Int, _ path: String = "/cold") async throws
        -> [TestResponse]
    {
        try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for _ in 0..<count { group.addTask { try await cache.get(path) } }
            var responses: [TestResponse] = []
            for try await response in group { responses.append(response) }
            return responses
        }
    }

    @Test func aHundredConcurrentMissesMakeOneOriginRequest() async throws {
        let gate = Gate()
        let cache = try CacheHarness { _, _ in
            await gate.wait()
            return reply(.ok, [.cacheControl: "max-age=60"], body: "shared")
        }
        async let responses = self.concurrent(cache, 100)
        // The leader is held at the origin until the 99 others wait for it.
        #expect(await eventually { cache.cache.collapser.waiting == 99 })
        gate.open()
        let answered = try await responses
        #expect(answered.allSatisfy { $0.bodyString == "shared" })
        #expect(cache.origin.count == 1)
        #expect(answered.filter { $0.cacheStatus == "Strata; fwd=uri-miss; ttl=60; collapsed" }.count == 99)
    }

    @Test func anUncacheableAnswerReleasesTheWaitersToTheOriginAtOnce() async throws {
        let gate = Gate()
        let cache = try CacheHarness({ $0.collapsedWaitTimeout = .seconds(3600) }) { _, number in
            if number == 1 { await gate.wait() }
            return reply(.ok, [.cacheControl: "no-store"], body: "private")
        }
        async let responses = self.concurrent(cache, 20)
        #expect(await eventually { cache.cache.collapser.waiting == 19 })
        gate.open()
        // With an hour's timeout, finishing at all shows the waiters were released.
        #expect(try await responses.count == 20)
        #expect(cache.origin.count == 20)
    }

    @Test func waitersAreBoundedInNumber() async throws {
        let gate = Gate()
        let cache = try CacheHarness({ $0.maximumCollapsedWaiters = 5 }) { _, _ in
            await gate.wait()
            return reply(.ok, [.cacheControl: "max-age=60"], body: "x")
        }
        async let responses = self.concurrent(cache, 10)
        // The leader and the four past the bound are at the origin; five wait.
        #expect(await eventually { cache.cache.collapser.waiting == 5 && cache.origin.count == 5 })
        gate.open()
        #expect(try await responses.count == 10)
        #expect(cache.origin.count == 5)
    }

    @Test func waitersGiveUpAfterTheTimeout() async throws {
        let gate = Gate()
        let cache = try CacheHarness({ $0.collapsedWaitTimeout = .milliseconds(50) }) { _, number in
            if number == 1 { await gate.wait() }
            return reply(.ok, [.cacheControl: "max-age=60"], body: "x")
        }
        async let leader = cache.get("/cold")
        #expect(await eventually { cache.origin.count == 1 })
        // Whatever the machine's speed, this one waits at most the timeout, then asks itself.
        let follower = try await cache.get("/cold")
        #expect(follower.status == .ok)
        #expect(cache.origin.count == 2)
        gate.open()
        _ = try await leader
    }

    @Test func anOriginFailureReleasesTheWaiters() async throws {
        let gate = Gate()
        let cache = try CacheHarness({ $0.collapsedWaitTimeout = .seconds(3600) }) { _, number in
            if number == 1 {
                await gate.wait()
                throw CancellationError()
            }
            return reply(.ok, [.cacheControl: "max-age=60"], body: "x")
        }
        async let responses = self.concurrent(cache, 5)
        #expect(await eventually { cache.cache.collapser.waiting == 4 })
        gate.open()
        let answered = try await responses
        #expect(answered.filter { $0.status == .ok }.count == 4)
    }
}
