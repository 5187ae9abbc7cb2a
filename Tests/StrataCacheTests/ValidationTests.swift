import HTTPTypes
import NIOCore
import Strata
import StrataCache
import StrataTesting
import Testing

/// RFC 9111 §4.3 (validation), §4.4 (invalidation) and the `no-cache`/`must-revalidate` family.
@Suite struct ValidationTests {
    @Test func aStaleResponseIsValidatedWithItsETagAnd304UpdatesTheStoredFields() async throws {
        let cache = try CacheHarness { request, number in
            if number > 1 {
                #expect(request.headerFields[.ifNoneMatch] == "\"v1\"")
                return reply(.notModified, [.eTag: "\"v1\"", .cacheControl: "max-age=100", .xTest: "new"], body: "")
            }
            return reply(.ok, [.eTag: "\"v1\"", .cacheControl: "max-age=10", .xTest: "old"], body: "stored body")
        }
        _ = try await cache.get()
        cache.advance(20)
        let validated = try await cache.get()
        // The client asked without conditions: it gets the whole stored response, never a 304.
        #expect(validated.status == .ok)
        #expect(validated.bodyString == "stored body")
        #expect(validated.headerFields[.xTest] == "new")
        #expect(validated.cacheStatus == "Strata; fwd=stale; fwd-status=304; ttl=100")
        cache.advance(50)
        let hit = try await cache.get()
        #expect(hit.cacheStatus == "Strata; hit; ttl=50")
        #expect(hit.headerFields[.xTest] == "new")
        #expect(cache.origin.count == 2)
    }

    @Test func lastModifiedIsValidatedWithIfModifiedSince() async throws {
        let clock = ManualClock()
        let modified = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 10)
        let cache = try CacheHarness(clock: clock) { request, number in
            if number > 1 {
                #expect(request.headerFields[.ifModifiedSince] == modified)
                return reply(.notModified, [:], body: "")
            }
            return reply(.ok, [.lastModified: modified, .cacheControl: "max-age=1"], body: "v")
        }
        _ = try await cache.get()
        clock.advance(by: .seconds(5))
        #expect(try await cache.get().bodyString == "v")
    }

    @Test func clientConditionalsAreAnsweredFromTheCache() async throws {
        let clock = ManualClock()
        let modified = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 100)
        let cache = try CacheHarness(clock: clock) { _, _ in
            reply(.ok, [.eTag: "W/\"v1\"", .lastModified: modified, .cacheControl: "max-age=60"], body: "full")
        }
        _ = try await cache.get()
        let matching = try await cache.get("/", [.ifNoneMatch: "\"v0\", \"v1\""])
        #expect(matching.status == .notModified)
        #expect(matching.body.readableBytes == 0)
        #expect(matching.headerFields[.eTag] == "W/\"v1\"")
        #expect(try await cache.get("/", [.ifNoneMatch: "\"v2\""]).status == .ok)
        #expect(try await cache.get("/", [.ifModifiedSince: modified]).status == .notModified)
        let earlier = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 200)
        #expect(try await cache.get("/", [.ifModifiedSince: earlier]).status == .ok)
        #expect(cache.origin.count == 1)
    }

    @Test func aConditionalClientOnAStaleEntryGetsA304OnlyWhenItsOwnTagMatches() async throws {
        let cache = try CacheHarness { _, number in
            number == 1
                ? reply(.ok, [.eTag: "\"v1\"", .cacheControl: "max-age=1"], body: "x")
                : reply(.notModified, [.eTag: "\"v1\""], body: "")
        }
        _ = try await cache.get()
        cache.advance(5)
        #expect(try await cache.get("/", [.ifNoneMatch: "\"v1\""]).status == .notModified)
        cache.advance(5)
        #expect(try await cache.get("/", [.ifNoneMatch: "\"other\""]).status == .ok)
    }

    @Test func a304ForAnotherRepresentationMakesAFullFetch() async throws {
        let cache = try CacheHarness { request, number in
            switch number {
            case 1: return reply(.ok, [.eTag: "\"a\"", .cacheControl: "max-age=1"], body: "a")
            case 2: return reply(.notModified, [.eTag: "\"b\""], body: "")
            default:
                #expect(request.headerFields[.ifNoneMatch] == nil)
                return reply(.ok, [.eTag: "\"b\"", .cacheControl: "max-age=60"], body: "b")
            }
        }
        _ = try await cache.get()
        cache.advance(5)
        #expect(try await cache.get().bodyString == "b")
        #expect(cache.origin.count == 3)
    }

    @Test func noCacheResponsesAreValidatedOnEveryUse() async throws {
        let cache = try CacheHarness { _, number in
            number == 1
                ? reply(.ok, [.eTag: "\"v\"", .cacheControl: "no-cache, max-age=60"], body: "x")
                : reply(.notModified, [.eTag: "\"v\""], body: "")
        }
        _ = try await cache.get()
        #expect(try await cache.get().cacheStatus == "Strata; fwd=stale; fwd-status=304; ttl=60")
        #expect(try await cache.get().bodyString == "x")
        #expect(cache.origin.count == 3)
    }

    @Test(arguments: ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate", "s-maxage=1"])
    func mustRevalidateForbidsServingStale(_ cacheControl: String) async throws {
        let cache = try CacheHarness { _, _ in
            reply(.ok, [.cacheControl: cacheControl + ", stale-if-error=60", .eTag: "\"e\""])
        }
        _ = try await cache.get()
        cache.advance(10)
        #expect(try await cache.get("/", [.cacheControl: "max-stale=100"]).cacheStatus.hasPrefix("Strata; fwd=stale"))
        cache.origin.answer { _, _ in throw CancellationError() }
        cache.advance(10)
        // The origin failed and stale content is forbidden: the failure reaches the client.
        #expect(try await cache.get().status == .internalServerError)
    }

    @Test func unsafeMethodsInvalidateTheTargetAndSameOriginLocations() async throws {
        let cache = try CacheHarness { request, _ in
            if request.method == .post {
                return reply(
                    .created,
                    [.location: "/items/1", .contentLocation: "http://elsewhere.example/items/2"])
            }
            if request.method == .delete { return reply(.internalServerError) }
            return reply(.ok, [.cacheControl: "max-age=600"], body: request.path ?? "")
        }
        for path in ["/items", "/items/1", "/items/2"] { _ = try await cache.get(path) }
        let posted = try await cache.send(.post, "/items")
        #expect(posted.cacheStatus == "Strata; fwd=method")
        #expect(try await cache.get("/items").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(try await cache.get("/items/1").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        // Another origin's URL is not this cache's to forget.
        #expect(try await cache.get("/items/2").cacheStatus.contains("hit"))
        // A failed unsafe request invalidates nothing.
        _ = try await cache.send(.delete, "/items/2")
        #expect(try await cache.get("/items/2").cacheStatus.contains("hit"))
    }
}
