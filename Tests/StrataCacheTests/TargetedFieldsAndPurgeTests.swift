import HTTPTypes
import NIOCore
import Strata
import StrataTesting
import Testing

@testable import StrataCache

/// RFC 9213 targeted fields, RFC 9211 `Cache-Status`, purging and tags.
@Suite struct TargetedFieldsAndPurgeTests {
    @Test func cdnCacheControlOverridesCacheControlAndIsPassedOn() async throws {
        let cache = try CacheHarness { _, _ in
            reply(.ok, [.cacheControl: "no-store", .cdnCacheControl: "max-age=60"])
        }
        let first = try await cache.get()
        #expect(first.headerFields[.cacheControl] == "no-store")
        #expect(first.headerFields[.cdnCacheControl] == "max-age=60")
        #expect(try await cache.get().cacheStatus == "Strata; hit; ttl=60")
    }

    @Test func theOwnTargetedFieldWinsAndIsRemoved() async throws {
        let cache = try CacheHarness { _, _ in
            reply(
                .ok, [.cacheControl: "max-age=600", .cdnCacheControl: "no-store", .strataCacheControl: "max-age=30"])
        }
        let first = try await cache.get()
        #expect(first.headerFields[.strataCacheControl] == nil)
        let second = try await cache.get()
        #expect(second.cacheStatus == "Strata; hit; ttl=30")
        #expect(second.headerFields[.strataCacheControl] == nil)
    }

    @Test func anInvalidTargetedFieldIsIgnored() async throws {
        let cache = try CacheHarness { _, _ in
            reply(.ok, [.cacheControl: "max-age=60", .cdnCacheControl: "Max-Age=5, &&"])
        }
        _ = try await cache.get()
        #expect(try await cache.get().cacheStatus == "Strata; hit; ttl=60")
    }

    @Test func cacheStatusIsAppendedAfterTheOriginsAndUsesTheConfiguredName() async throws {
        let cache = try CacheHarness({ $0.name = "edge-1" }) { _, _ in
            reply(.ok, [.cacheControl: "max-age=60", .cacheStatus: "origin-cache; hit"])
        }
        let first = try await cache.get()
        #expect(
            first.headerFields[values: .cacheStatus] == [
                "origin-cache; hit", "edge-1; fwd=uri-miss; fwd-status=200; stored",
            ])
    }

    @Test func theCacheStatusFieldsMadeOnceSayWhatRenderingSays() {
        let fields = CacheStatusFields(name: "edge-1")
        var checked = 0
        for forward in [nil] + CacheStatus.Forward.allCases.map(Optional.some) {
            for forwardStatus in [nil, 200, 404] {
                for (stored, collapsed, hit) in [
                    (false, false, false), (true, false, false), (true, true, false), (false, false, true),
                ] {
                    var status = CacheStatus()
                    status.forward = forward
                    status.forwardStatus = forwardStatus
                    status.stored = stored
                    status.collapsed = collapsed
                    status.hit = hit
                    let field = fields.field(status)
                    #expect(field.name == .cacheStatus)
                    #expect(field.value == status.render(name: "edge-1"), "\(field.value)")
                    checked += 1
                }
            }
        }
        #expect(checked == 7 * 3 * 4)
        var stale = CacheStatus.forwarded(.stale)
        stale.forwardStatus = 200
        #expect(fields.field(stale).value == "edge-1; fwd=stale; fwd-status=200")
    }

    @Test func purgingByURLAndByTag() async throws {
        let cache = try CacheHarness { request, _ in
            var fields: HTTPFields = [.cacheControl: "max-age=600"]
            if request.path == "/a" { fields[.cacheTag] = "products, red" }
            if request.path == "/b" { fields[.surrogateKey] = "products blue" }
            return reply(.ok, fields)
        }
        for path in ["/a", "/b", "/c"] { _ = try await cache.get(path) }
        // The tags are the cache's: the client does not see them.
        #expect(try await cache.get("/a").headerFields[.cacheTag] == nil)
        #expect(try await cache.cache.purge(tag: "products") == 2)
        #expect(try await cache.get("/a").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(try await cache.get("/b").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(try await cache.get("/c").cacheStatus.contains("hit"))
        try await cache.cache.purge(url: "http://localhost/c")
        #expect(try await cache.get("/c").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        await #expect(throws: CacheStoreError.self) { try await cache.cache.purge(url: "/relative") }
    }

    @Test func thePurgeMethodIsGuardedByItsPredicate() async throws {
        let cache = try CacheHarness({ configuration in
            configuration.purgeAuthorization = { request, _ in request.headerFields[.authorization] == "Bearer ops" }
        }) { _, _ in reply(.ok, [.cacheControl: "max-age=600", .cacheTag: "t"]) }
        let purge = HTTPRequest.Method("PURGE")!
        _ = try await cache.get("/x")
        _ = try await cache.get("/y")
        #expect(try await cache.send(purge, "/x").status == .forbidden)
        #expect(try await cache.get("/x").cacheStatus.contains("hit"))
        #expect(try await cache.send(purge, "/x", [.authorization: "Bearer ops"]).status == .ok)
        #expect(try await cache.get("/x").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        let byTag = try await cache.send(purge, "/", [.authorization: "Bearer ops", .cacheTag: "t"])
        #expect(byTag.bodyString == "purged 2\n")
        #expect(try await cache.get("/y").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
    }

    @Test func withoutAPredicatePurgeGoesToTheApp() async throws {
        let cache = try CacheHarness { _, _ in reply(.methodNotAllowed) }
        #expect(try await cache.send(HTTPRequest.Method("PURGE")!, "/x").status == .methodNotAllowed)
        #expect(cache.origin.count == 1)
    }

    @Test func anInvalidConfigurationListsEveryProblem() {
        var configuration = HTTPCacheConfiguration()
        configuration.name = "two words"
        configuration.heuristicFraction = 2
        configuration.maximumEntrySize = 0
        configuration.targetedFields = [.cacheControl]
        configuration.staleIfError = .seconds(10)
        configuration.maximumStale = .seconds(1)
        #expect {
            try HTTPCache(configuration: configuration)
        } throws: { error in
            (error as? HTTPCacheConfigurationError)?.problems.count == 5
        }
    }
}
