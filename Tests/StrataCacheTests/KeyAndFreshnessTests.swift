import HTTPTypes
import NIOCore
import Strata
import StrataCache
import StrataTesting
import Testing

/// RFC 9111 §4.1 (keys and `Vary`) and §4.2 (freshness, age, request directives).
@Suite struct KeyAndFreshnessTests {
    @Test func varyMakesOneVariantPerNormalisedRequestValue() async throws {
        let cache = try CacheHarness { request, _ in
            reply(
                .ok, [.cacheControl: "max-age=60", .vary: "Accept-Language"],
                body: request.headerFields[.acceptLanguage] ?? "none")
        }
        #expect(try await cache.get("/", [.acceptLanguage: "en, fr"]).bodyString == "en, fr")
        let other = try await cache.get("/", [.acceptLanguage: "de"])
        #expect(other.bodyString == "de")
        #expect(other.cacheStatus.hasPrefix("Strata; fwd=vary-miss"))
        // Whitespace and case do not make a new variant of a case-insensitive field.
        let same = try await cache.get("/", [.acceptLanguage: "EN,   fr"])
        #expect(same.bodyString == "en, fr")
        #expect(same.cacheStatus.contains("hit"))
        #expect(try await cache.get("/").bodyString == "none")
        #expect(try await cache.get("/").cacheStatus.contains("hit"))
        #expect(cache.origin.count == 3)
    }

    @Test func varyStarIsNeverMatched() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60", .vary: "*"]) }
        _ = try await cache.get()
        _ = try await cache.get()
        #expect(cache.origin.count == 2)
    }

    @Test func theKeyHasTheQueryAndNormalisedPercentEncodings() async throws {
        let cache = try CacheHarness { request, _ in reply(.ok, [.cacheControl: "max-age=60"], body: request.path ?? "")
        }
        _ = try await cache.get("/a%7eb?x=%2f")
        #expect(try await cache.get("/a~b?x=%2F").cacheStatus.contains("hit"))
        #expect(try await cache.get("/a~b?x=1").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(
            CacheKey.primary(for: HTTPRequest(method: .head, scheme: "http", authority: "Example.COM:80", path: "/p"))
                == "GET http://example.com/p")
        #expect(
            CacheKey.primary(for: HTTPRequest(method: .get, scheme: "HTTPS", authority: "shop.example:443", path: "/"))
                == "GET https://shop.example/")
        #expect(
            CacheKey.primary(
                for: HTTPRequest(method: .get, scheme: "http", authority: "shop.example:8080", path: "/q?A"))
                == "GET http://shop.example:8080/q?A")
        // Only the scheme's own default port goes; a host in any case, or with non-ASCII
        // letters (lower-cased by Unicode's rules), gives one key.
        let keys: [(String, String?, String)] = [
            ("HTTP", "WWW.Example.com:80", "GET http://www.example.com/p"),
            ("https", "example.com:80", "GET https://example.com:80/p"),
            ("http", "example.com:443", "GET http://example.com:443/p"),
            ("http", "example.com:8080", "GET http://example.com:8080/p"),
            ("http", nil, "GET http:///p"),
            ("http", "B\u{DC}CHER.example", "GET http://b\u{FC}cher.example/p"),
        ]
        for (scheme, authority, expected) in keys {
            let head = HTTPRequest(method: .get, scheme: scheme, authority: authority, path: "/p")
            #expect(CacheKey.primary(for: head) == expected, "\(scheme) \(authority ?? "nil")")
        }
    }

    @Test func sharedMaxAgeWinsOverMaxAgeAndExpires() async throws {
        let clock = ManualClock()
        let cache = try CacheHarness(clock: clock) { _, _ in
            reply(
                .ok,
                [
                    .cacheControl: "max-age=5, s-maxage=100",
                    .expires: HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 + 10),
                ], clock: clock)
        }
        _ = try await cache.get()
        clock.advance(by: .seconds(50))
        #expect(try await cache.get().cacheStatus == "Strata; hit; ttl=50")
    }

    @Test func expiresCountsFromDateAndAnInvalidOneIsStale() async throws {
        let clock = ManualClock()
        let cache = try CacheHarness(clock: clock) { request, _ in
            let expires =
                request.path == "/bad" ? "0" : HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 + 30)
            return reply(.ok, [.expires: expires, .eTag: "\"x\""], clock: clock)
        }
        _ = try await cache.get("/good")
        clock.advance(by: .seconds(20))
        #expect(try await cache.get("/good").cacheStatus == "Strata; hit; ttl=10")
        _ = try await cache.get("/bad")
        #expect(try await cache.get("/bad").cacheStatus.hasPrefix("Strata; fwd=stale"))
    }

    @Test func theOriginsAgeAndTheResponseDelayCount() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60", .age: "50"]) }
        _ = try await cache.get()
        cache.advance(5)
        let hit = try await cache.get()
        #expect(hit.headerFields[.age] == "55")
        #expect(hit.cacheStatus == "Strata; hit; ttl=5")
        cache.advance(6)
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=stale"))
    }

    /// A hit's `Age` and `Cache-Status` are kept per entry for the second they were made in:
    /// they must follow the clock, and a second cache sharing the store must send its own name.
    @Test func hitsAfterTheClockMovedOrFromAnotherCacheSendTheirOwnAgeAndStatus() async throws {
        let clock = ManualClock()
        let store = MemoryCacheStore(clock: clock)
        let cache = try CacheHarness(clock: clock, store: store) { _, _ in
            reply(.ok, [.cacheControl: "max-age=60", .eTag: "\"v\""], clock: clock)
        }
        let other = try CacheHarness({ $0.name = "Edge" }, clock: clock, store: store) { _, _ in
            reply(.ok, [.cacheControl: "max-age=60"], clock: clock)
        }
        _ = try await cache.get()
        for _ in 0..<2 {
            let hit = try await cache.get()
            #expect(hit.headerFields[.age] == "0")
            #expect(hit.cacheStatus == "Strata; hit; ttl=60")
        }
        cache.advance(7)
        let later = try await cache.get()
        #expect(later.headerFields[.age] == "7")
        #expect(later.cacheStatus == "Strata; hit; ttl=53")
        #expect(later.headerFields[values: .age].count == 1, "one Age, not one per hit")
        let fromOther = try await other.get()
        #expect(fromOther.headerFields[.cacheStatus] == "Edge; hit; ttl=53")
        #expect(other.origin.count == 0, "the other cache answered from the shared store")
        #expect(try await cache.get().cacheStatus == "Strata; hit; ttl=53")
        // A conditional hit is still answered 304 from the kept fields.
        let conditional = try await cache.get("/", [.ifNoneMatch: "\"v\""])
        #expect(conditional.status == .notModified)
        #expect(conditional.headerFields[.age] == "7")
    }

    @Test func anApparentAgeFromAnOldDateCounts() async throws {
        let clock = ManualClock()
        let cache = try CacheHarness(clock: clock) { _, _ in
            reply(
                .ok,
                [
                    .cacheControl: "max-age=60",
                    .date: HTTPDate.format(secondsSince1970: clock.now().secondsSince1970 - 40),
                ])
        }
        _ = try await cache.get()
        #expect(try await cache.get().headerFields[.age] == "40")
    }

    @Test func requestMaxAgeMinFreshAndMaxStale() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        _ = try await cache.get()
        cache.advance(30)
        #expect(try await cache.get("/", [.cacheControl: "max-age=10"]).cacheStatus.hasPrefix("Strata; fwd=request"))
        // That refetch made a new response: 20 s later it has 40 s of freshness left.
        cache.advance(20)
        #expect(try await cache.get("/", [.cacheControl: "min-fresh=30"]).cacheStatus == "Strata; hit; ttl=40")
        #expect(try await cache.get("/", [.cacheControl: "min-fresh=50"]).cacheStatus.hasPrefix("Strata; fwd=request"))
        cache.advance(70)  // 10 s stale
        #expect(try await cache.get("/", [.cacheControl: "max-stale=20"]).cacheStatus == "Strata; hit; ttl=-10")
        #expect(try await cache.get("/", [.cacheControl: "max-stale=5"]).cacheStatus.hasPrefix("Strata; fwd=stale"))
    }

    @Test func requestNoCacheAndPragmaRevalidate() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        _ = try await cache.get()
        #expect(try await cache.get("/", [.cacheControl: "no-cache"]).cacheStatus.hasPrefix("Strata; fwd=request"))
        #expect(try await cache.get("/", [.pragma: "no-cache"]).cacheStatus.hasPrefix("Strata; fwd=request"))
        // Cache-Control present: Pragma is ignored.
        #expect(
            try await cache.get("/", [.pragma: "no-cache", .cacheControl: "max-stale=1"]).cacheStatus.contains(
                "hit"))
    }

    @Test func onlyIfCachedAnswers504WithoutAStoredResponse() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        let miss = try await cache.get("/", [.cacheControl: "only-if-cached"])
        #expect(miss.status == .gatewayTimeout)
        #expect(cache.origin.count == 0)
        _ = try await cache.get()
        #expect(try await cache.get("/", [.cacheControl: "only-if-cached"]).status == .ok)
    }

    @Test func invalidMaxAgeMakesTheResponseStale() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=abc", .eTag: "\"e\""]) }
        _ = try await cache.get()
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=stale"))
    }

    @Test func directivesParseQuotedValuesCaseAndTheFirstOfRepeats() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .cacheControl, value: "MAX-AGE=\"30\", no-cache=\"Set-Cookie, X-A\""))
        fields.append(HTTPField(name: .cacheControl, value: "max-age=99, stale-while-revalidate=99999999999"))
        let directives = CacheDirectives(fields)
        #expect(directives.maxAge == 30)
        #expect(directives.noCacheFields == ["set-cookie", "x-a"])
        #expect(directives.noCache == false)
        #expect(directives.staleWhileRevalidate == 2_147_483_648)
    }

    @Test func directivesParseAroundWhitespaceEmptyElementsAndBadNumbers() {
        let spaced = CacheDirectives([
            .cacheControl: " max-age = 60 ,, ,\tNo-Store\t, s-maxage=12345678901, min-fresh=1x"
        ])
        #expect(spaced.maxAge == 60)
        #expect(spaced.noStore)
        #expect(spaced.sharedMaxAge == 2_147_483_648)
        #expect(spaced.minFresh == 0)
        // A comma inside quotes does not end the element; a name ends at `;` too.
        let quoted = CacheDirectives([.cacheControl: "private=\"a, b\", must-revalidate;x=1, max-stale"])
        #expect(quoted.privateFields == ["a", "b"])
        #expect(quoted.mustRevalidate)
        #expect(quoted.maxStale == Int.max)
        #expect(CacheDirectives([.cacheControl: ""]) == CacheDirectives())
    }

    @Test func malformedQuotedDirectiveValuesParseWithoutLosingTheDirective() {
        // An escaped character inside quotes, an unterminated quote, and a lone quote.
        let escaped = CacheDirectives([.cacheControl: "private=\"Set-Cookie, X-\\A\", max-age=5"])
        #expect(escaped.privateFields == ["set-cookie", "x-a"])
        #expect(escaped.maxAge == 5)
        let unterminated = CacheDirectives([.cacheControl: "no-cache=\"X-B"])
        #expect(unterminated.noCacheFields == ["x-b"])
        #expect(unterminated.noCache == false)
        let lone = CacheDirectives([.cacheControl: "no-cache=\""])
        #expect(lone.noCache == true)
        #expect(lone.noCacheFields.isEmpty)
    }

    @Test func acceptEncodingIsNormalisedToFewSpellings() {
        func normalised(_ value: String, _ normalization: AcceptEncodingNormalization = .accepted()) -> String? {
            var fields: HTTPFields = [.acceptEncoding: value]
            normalization.apply(to: &fields)
            return fields[.acceptEncoding]
        }
        #expect(normalised("gzip, deflate, br, zstd") == "gzip, deflate, br, zstd")
        #expect(normalised("br;q=0.9, GZIP,deflate") == "gzip, deflate, br")
        #expect(normalised("*;q=0.5, br;q=0") == "gzip, deflate, zstd")
        #expect(normalised("identity") == nil)
        #expect(normalised("gzip, br", .preferred(among: ["br", "gzip"])) == "br")
        #expect(normalised("gzip;q=0.5, br", .unchanged) == "gzip;q=0.5, br")
    }

    @Test func aRequestWithNoTransformReachesTheOriginAsSent() async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        _ = try await cache.get("/a", [.acceptEncoding: "br;q=0.5, gzip", .cacheControl: "no-transform"])
        _ = try await cache.get("/b", [.acceptEncoding: "br;q=0.5, gzip"])
        #expect(cache.origin.requests.map { $0.headerFields[.acceptEncoding] } == ["br;q=0.5, gzip", "gzip, br"])
    }

    @Test(arguments: ["abc", "-5", "", "1e3"])
    func anInvalidAgeFromTheOriginCountsAsZero(_ age: String) async throws {
        let cache = try CacheHarness { _, _ in reply(.ok, [.cacheControl: "max-age=60", .age: age]) }
        _ = try await cache.get()
        let hit = try await cache.get()
        #expect(hit.headerFields[.age] == "0")
        #expect(hit.cacheStatus == "Strata; hit; ttl=60")
    }
}
