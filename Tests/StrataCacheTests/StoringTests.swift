import HTTPTypes
import NIOCore
import Strata
import StrataCache
import StrataTesting
import Testing

/// RFC 9111 §3: what may be stored, and what never is.
@Suite struct StoringTests {
    @Test func aFreshResponseIsStoredAndAnsweredWithItsAge() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"], body: "hello") }
        let first = try await cache.get("/a")
        #expect(first.bodyString == "hello")
        #expect(first.cacheStatus == "Strata; fwd=uri-miss; fwd-status=200; stored")
        cache.advance(10)
        let second = try await cache.get("/a")
        #expect(second.bodyString == "hello")
        #expect(second.headerFields[.age] == "10")
        #expect(second.cacheStatus == "Strata; hit; ttl=50")
        #expect(cache.origin.count == 1)
    }

    @Test(arguments: ["no-store", "private, max-age=60", "max-age=60, no-store"])
    func noStoreAndPrivateAreNotStoredInASharedCache(_ cacheControl: String) async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: cacheControl]) }
        _ = try await cache.get()
        let second = try await cache.get()
        #expect(second.cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(cache.origin.count == 2)
    }

    @Test func aPrivateCacheStoresPrivateButIgnoresSharedMaxAge() async throws {
        let cache = try CacheHarness({ $0.mode = .private }) { _, _ in
            reply(.ok, [.cacheControl: "private, max-age=60, s-maxage=1"])
        }
        _ = try await cache.get()
        cache.advance(30)
        let second = try await cache.get()
        #expect(second.cacheStatus == "Strata; hit; ttl=30")
        #expect(cache.origin.count == 1)
    }

    @Test func anAuthorizedRequestIsStoredOnlyWithPublicSMaxAgeOrMustRevalidate() async throws {
        for (cacheControl, stored) in [
            ("max-age=60", false), ("public, max-age=60", true), ("s-maxage=60", true),
            ("max-age=60, must-revalidate", true),
        ] {
            let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: cacheControl]) }
            _ = try await cache.get("/", [.authorization: "Bearer alice"])
            let other = try await cache.get("/", [.authorization: "Bearer bob"])
            #expect(other.cacheStatus.contains("hit") == stored, "\(cacheControl)")
            #expect(cache.origin.count == (stored ? 1 : 2), "\(cacheControl)")
        }
    }

    @Test func setCookieIsNeverStoredOrReplayedButReachesTheRequester() async throws {
        let cache = try CacheHarness { _, _ in
            var fields: HTTPFields = [.cacheControl: "public, max-age=60"]
            fields.append(HTTPField(name: .setCookie, value: "a=1; Path=/"))
            fields.append(HTTPField(name: .setCookie, value: "b=2; Path=/"))
            return reply(.ok, fields, body: "alice's")
        }
        let first = try await cache.get()
        #expect(first.headerFields[values: .setCookie] == ["a=1; Path=/", "b=2; Path=/"])
        let second = try await cache.get()
        #expect(second.cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(cache.origin.count == 2)
    }

    @Test func heuristicFreshnessOnlyForHeuristicallyCacheableStatuses() async throws {
        let clock = ManualClock()
        let lastModified = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 1000)
        let cache = try CacheHarness(clock: clock) { request, _ in
            let status: HTTPResponse.Status = request.path == "/found" ? .found : .ok
            return reply(status, [.lastModified: lastModified], clock: clock)
        }
        _ = try await cache.get("/ok")
        clock.advance(by: .seconds(99))
        // A tenth of the 1000 s since Last-Modified.
        #expect(try await cache.get("/ok").cacheStatus == "Strata; hit; ttl=1")
        _ = try await cache.get("/found")
        #expect(try await cache.get("/found").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
    }

    @Test func aFieldOnTwoLinesIsReadAsOneJoinedValue() async throws {
        let clock = ManualClock()
        let lastModified = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 1000)
        let cache = try CacheHarness(clock: clock) { request, _ in
            var fields: HTTPFields = [.lastModified: lastModified]
            // Two lines join into no valid date: no heuristic freshness, so the stored response
            // is stale at once. The first line alone would be fresh for 100 s.
            if request.path == "/two" { fields.append(HTTPField(name: .lastModified, value: lastModified)) }
            return reply(.ok, fields, clock: clock)
        }
        _ = try await cache.get("/one")
        #expect(try await cache.get("/one").cacheStatus == "Strata; hit; ttl=100")
        _ = try await cache.get("/two")
        #expect(try await cache.get("/two").cacheStatus.hasPrefix("Strata; fwd=stale"))
        #expect(cache.origin.count == 3)
    }

    @Test func aServerErrorWithExplicitFreshnessIsStored() async throws {
        let cache = try CacheHarness { _, _ in reply(.internalServerError, [.cacheControl: "max-age=5"]) }
        _ = try await cache.get()
        let second = try await cache.get()
        #expect(second.status == .internalServerError)
        #expect(second.cacheStatus.contains("hit"))
    }

    @Test func mustUnderstandOverridesNoStoreForAnUnderstoodStatus() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "must-understand, no-store, max-age=60"]) }
        _ = try await cache.get()
        #expect(try await cache.get().cacheStatus.contains("hit"))
    }

    @Test func requestNoStoreStoresNothing() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        _ = try await cache.get("/", [.cacheControl: "no-store"])
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
    }

    @Test func postIsNotStoredAndHeadIsAnsweredFromTheGetEntry() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"], body: "twelve bytes") }
        _ = try await cache.send(.post)
        _ = try await cache.send(.head)
        #expect(cache.origin.count == 2)
        _ = try await cache.get()
        let head = try await cache.send(.head)
        #expect(head.cacheStatus.contains("hit"))
        #expect(cache.origin.count == 3)
    }

    @Test func aResponseWithContentRangeOrA206IsNotStored() async throws {
        let cache = try CacheHarness { _, _ in
            reply(.partialContent, [.cacheControl: "max-age=60", .contentRange: "bytes 0-3/10"])
        }
        _ = try await cache.get()
        _ = try await cache.get()
        #expect(cache.origin.count == 2)
    }

    @Test func hopByHopAndNamedFieldsAreNotStored() async throws {
        let cache = try CacheHarness { _, _ in
            reply(
                .ok,
                [
                    .cacheControl: "max-age=60, no-cache=\"X-Secret\", private=\"X-Test\"", .connection: "X-Hop",
                    HTTPField.Name("X-Hop")!: "1", .xSecret: "s", .xTest: "t", .contentType: "text/plain",
                ])
        }
        let first = try await cache.get()
        #expect(first.headerFields[.xSecret] == "s")
        let second = try await cache.get()
        #expect(second.cacheStatus.contains("hit"))
        #expect(second.headerFields[.xSecret] == nil)
        #expect(second.headerFields[.xTest] == nil)
        #expect(second.headerFields[HTTPField.Name("X-Hop")!] == nil)
        #expect(second.headerFields[.contentType] == "text/plain")
    }

    @Test func aResponseVaryingOnCookieIsNotStoredInASharedCache() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60", .vary: "Cookie"]) }
        _ = try await cache.get("/", [.cookie: "s=1"])
        _ = try await cache.get("/", [.cookie: "s=1"])
        #expect(cache.origin.count == 2)
    }

    @Test func aCacheControlThatConnectionNamesIsHopByHopAndGivesNoFreshness() async throws {
        let cache = try CacheHarness { _, _ in
            reply(.ok, [.cacheControl: "max-age=60", .connection: "Cache-Control"])
        }
        _ = try await cache.get()
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(cache.origin.count == 2)
    }
}
