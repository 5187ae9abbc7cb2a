import HTTPTypes
import NIOCore
import Strata
import StrataTesting
import Testing

@_spi(Benchmarks) @testable import StrataCache

/// The rules a miss applies, called alone (`requestRules`, `responseRules`: what the benchmarks'
/// floor of a miss runs), decide what the cache itself decides on the same miss: the floor
/// measures the cache's own rules, not a lighter copy of them.
@Suite struct MissRulesTests {
    /// Each kind of origin response, and whether the cache stores it.
    static let responses: [(String, HTTPFields, stored: Bool)] = [
        ("fresh", [.cacheControl: "max-age=60", .eTag: "\"a\"", .contentType: "text/plain"], true),
        ("no-store", [.cacheControl: "no-store"], false),
        ("private", [.cacheControl: "private, max-age=60"], false),
        ("set-cookie", [.cacheControl: "public, max-age=60", .setCookie: "a=1"], false),
        ("vary-star", [.cacheControl: "max-age=60", .vary: "*"], false),
        ("vary", [.cacheControl: "max-age=60", .vary: "Accept-Encoding"], true),
        (
            "hop-by-hop and tags",
            [
                .cacheControl: "max-age=60, no-cache=\"X-Secret\"", .connection: "X-Hop", HTTPField.Name("X-Hop")!: "1",
                .xSecret: "s", .cacheTag: "a, b",
            ], true
        ),
        ("heuristic", [.lastModified: "Mon, 07 Dec 2026 07:00:05 GMT", .date: "Mon, 07 Dec 2026 17:00:05 GMT"], true),
        ("nothing", [.contentType: "text/plain"], false),
        (
            "targeted", [.cacheControl: "no-store", .cdnCacheControl: "max-age=30", .strataCacheControl: "max-age=10"],
            true
        ),
    ]

    @Test(arguments: Self.responses.indices)
    func theRulesAloneDecideAsTheCacheDoes(_ index: Int) async throws {
        let (name, fields, expected) = Self.responses[index]
        let harness = try CacheHarness { _, _ in reply(.ok, fields, body: "thirteen byte") }
        let answer = try await harness.get("/r", [.acceptEncoding: "br, gzip"])
        let forwarded = try #require(harness.origin.requests.first)
        let stored = try await harness.store.variants(for: CacheKey.primary(for: forwarded)).first

        var request = HTTPRequest(method: .get, scheme: forwarded.scheme, authority: forwarded.authority, path: "/r")
        request.headerFields = [.acceptEncoding: "br, gzip"]
        let directives = harness.cache.requestRules(&request)
        #expect(request.headerFields == forwarded.headerFields, "\(name): the request as forwarded")
        var response = reply(.ok, fields, body: "thirteen byte")
        let entry = harness.cache.responseRules(
            &response, to: request, requestDirectives: directives, requestTime: harness.clock.now())

        #expect((stored != nil) == expected, "\(name): stored by the cache")
        #expect((entry != nil) == expected, "\(name): stored by the rules alone")
        #expect(entry?.headerFields == stored?.headerFields, "\(name): stored fields")
        #expect(entry?.variantKey == stored?.variantKey, "\(name): variant")
        #expect(entry?.storedUntil == stored?.storedUntil, "\(name): kept until")
        #expect(entry?.freshness?.lifetime == stored?.freshness?.lifetime, "\(name): lifetime")
        #expect(entry?.tags == stored?.tags, "\(name): tags")
        #expect(response.status == answer.status)
        #expect(response.head.headerFields == answer.headerFields, "\(name): the client's fields")
    }
}
