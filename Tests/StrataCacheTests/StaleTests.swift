import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

@testable import StrataCache

/// Serving stale: `stale-while-revalidate` (in the background, once), `stale-if-error`, the
/// configured default and the ceiling.
@Suite struct StaleTests {
    @Test func staleWhileRevalidateAnswersAtOnceAndRevalidatesOnceInTheBackground() async throws {
        let gate = Gate()
        let cache = try CacheHarness { _, number in
            if number == 1 {
                return reply(.ok, [.cacheControl: "max-age=1, stale-while-revalidate=60", .eTag: "\"1\""], body: "old")
            }
            await gate.wait()
            return reply(.ok, [.cacheControl: "max-age=60", .eTag: "\"2\""], body: "new")
        }
        _ = try await cache.get()
        cache.advance(5)
        // Ten requests while the revalidation is held at the origin: all answered stale at once.
        for _ in 0..<10 {
            let stale = try await cache.get()
            #expect(stale.bodyString == "old")
            #expect(stale.cacheStatus == "Strata; hit; ttl=-4; detail=stale-while-revalidate")
        }
        #expect(await eventually { cache.origin.count == 2 })
        gate.open()
        #expect(try await eventually { try await cache.get().bodyString == "new" })
        #expect(cache.origin.count == 2)
    }

    @Test func theMiddlewareRevalidatesBeforeAnswering() async throws {
        let clock = ManualClock()
        let cache = try HTTPCache(store: MemoryCacheStore(clock: clock), clock: clock)
        let origin = ScriptedOrigin { _, number in
            reply(.ok, [.cacheControl: "max-age=1, stale-while-revalidate=60"], body: "v\(number)")
        }
        let client = TestClient(responder: cache.middleware(context: BasicContext.self).wrapping(origin))
        _ = try await client.execute(.get, "/")
        clock.advance(by: .seconds(5))
        let second = try await client.execute(.get, "/")
        #expect(second.bodyString == "v2")
        #expect(second.cacheStatus.hasPrefix("Strata; fwd=stale"))
    }

    @Test func staleIfErrorAnswersWhenTheOriginFailsOrErrs() async throws {
        let cache = try CacheHarness { _, _ in
            reply(.ok, [.cacheControl: "max-age=1, stale-if-error=30", .eTag: "\"e\""], body: "kept")
        }
        _ = try await cache.get()
        cache.advance(10)
        cache.origin.answer { _, _ in throw CancellationError() }
        let thrown = try await cache.get()
        #expect(thrown.bodyString == "kept")
        #expect(thrown.cacheStatus == "Strata; fwd=stale; ttl=-9; detail=stale-if-error")
        #expect(cache.logs.messages(atLeast: .warning).contains { $0.hasPrefix("origin failed; serving the stale") })
        cache.origin.answer { _, _ in reply(.serviceUnavailable, body: "down") }
        let unavailable = try await cache.get()
        #expect(unavailable.bodyString == "kept")
        #expect(unavailable.cacheStatus == "Strata; fwd=stale; fwd-status=503; ttl=-9; detail=stale-if-error")
        // Past the window, the error goes through.
        cache.advance(30)
        #expect(try await cache.get().status == .serviceUnavailable)
    }

    @Test func theConfiguredStaleIfErrorAppliesToResponsesWithoutTheDirective() async throws {
        let cache = try CacheHarness({ $0.staleIfError = .seconds(60) }) { _, _ in
            reply(.ok, [.cacheControl: "max-age=1"], body: "kept")
        }
        _ = try await cache.get()
        cache.advance(30)
        cache.origin.answer { _, _ in reply(.badGateway) }
        #expect(try await cache.get().bodyString == "kept")
    }

    @Test func theStaleCeilingCapsEveryDirective() async throws {
        let cache = try CacheHarness({ $0.maximumStale = .seconds(10) }) { _, _ in
            reply(.ok, [.cacheControl: "max-age=1, stale-if-error=3600", .eTag: "\"e\""], body: "kept")
        }
        _ = try await cache.get()
        cache.advance(5)
        #expect(try await cache.get("/", [.cacheControl: "max-stale=3600"]).cacheStatus.contains("hit"))
        cache.advance(20)
        cache.origin.answer { _, _ in reply(.badGateway) }
        #expect(try await cache.get().status == .badGateway)
    }
}
