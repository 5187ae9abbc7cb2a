import HTTPTypes
import Logging
import MetricsTestKit
import NIOCore
import Strata
import StrataCache
import StrataCompression
import StrataSessions
import StrataTestSupport
import StrataTesting
import Testing

/// The streaming tee, the stack around the cache (compression, sessions), store failures and
/// metrics.
@Suite struct StreamingAndCompositionTests {
    private func streamed(_ chunks: Int, size: Int = 1000, failAfter: Int? = nil, fields: HTTPFields)
        -> ServerResponse
    {
        ServerResponse(
            status: .ok, headerFields: fields,
            body: ResponseBody { writer in
                for index in 0..<chunks {
                    if index == failAfter { throw CacheTestError.originFailed }
                    try await writer.write(ByteBuffer(repeating: UInt8(ascii: "a") + UInt8(index % 26), count: size))
                }
            })
    }

    @Test func aStreamedResponseIsStoredWhileItStreams() async throws {
        let cache = try CacheHarness { _, _ in self.streamed(10, fields: [.cacheControl: "max-age=60"]) }
        let first = try await cache.get()
        #expect(first.body.readableBytes == 10_000)
        let second = try await cache.get()
        #expect(second.cacheStatus.contains("hit"))
        #expect(second.body == first.body)
        #expect(second.headerFields[.contentLength] == nil)
        #expect(second.contentLength == 10_000)
    }

    /// A transform inside the cache that changes the head before the first body byte (as
    /// compression taking back its `Content-Encoding`): the stored copy follows, and its
    /// freshness is derived from the fields as changed, not as they were before the body.
    @Test func aHeadChangedWhileTheBodyStreamsIsWhatIsStored() async throws {
        let cache = try CacheHarness { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.cacheControl: "max-age=60", .xTest: "before"],
                body: ResponseBody { writer in
                    let changed = writer.updateHeaderFields { fields in
                        fields[.cacheControl] = "max-age=10"
                        fields[.xTest] = "after"
                    }
                    #expect(changed)
                    try await writer.write(ByteBuffer(string: "streamed"))
                })
        }
        let first = try await cache.get()
        #expect(first.headerFields[.xTest] == "after")
        let hit = try await cache.get()
        #expect(hit.cacheStatus == "Strata; hit; ttl=10")
        #expect(hit.headerFields[.xTest] == "after")
        #expect(String(buffer: hit.body) == "streamed")
        cache.advance(20)
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=stale"), "stale after the changed max-age")
        #expect(cache.origin.count == 2)
    }

    /// Unchanged fields: the entry prepared before the body streamed is stored as it is.
    @Test func aStreamedResponseKeepsTheFreshnessDerivedBeforeItsBody() async throws {
        let cache = try CacheHarness { _, _ in
            self.streamed(3, fields: [.cacheControl: "max-age=60", .eTag: "\"s\"", .cacheTag: "a, b"])
        }
        _ = try await cache.get()
        cache.advance(15)
        let hit = try await cache.get()
        #expect(hit.cacheStatus == "Strata; hit; ttl=45")
        #expect(hit.headerFields[.age] == "15")
        #expect(hit.headerFields[.cacheTag] == nil, "tag fields are not sent by default")
        #expect(try await cache.get("/", [.ifNoneMatch: "\"s\""]).status == .notModified)
        #expect(try await cache.cache.purge(tag: "b") == 1, "the tags were kept with the entry")
    }

    @Test func aResponseOverTheEntryCapPassesThroughAndIsNotStored() async throws {
        let cache = try CacheHarness({ $0.maximumEntrySize = 4_096 }) { _, _ in
            self.streamed(10, fields: [.cacheControl: "max-age=60"])
        }
        #expect(try await cache.get().body.readableBytes == 10_000)
        #expect(try await cache.get().cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        #expect(cache.store.count == 0)
    }

    @Test func anOriginThatFailsMidBodyLeavesNoEntry() async throws {
        let cache = try CacheHarness { _, _ in self.streamed(10, failAfter: 5, fields: [.cacheControl: "max-age=60"]) }
        await #expect(throws: CacheTestError.originFailed) { _ = try await cache.get() }
        #expect(cache.store.count == 0)
        #expect(cache.logs.messages(atLeast: .info).contains { $0.hasPrefix("origin body failed; nothing stored") })
        cache.origin.answer { _, _ in reply(.ok, [.cacheControl: "max-age=60"], body: "whole") }
        #expect(try await cache.get().bodyString == "whole")
    }

    @Test func aShortBodyForItsDeclaredLengthIsNotStored() async throws {
        let cache = try CacheHarness { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.cacheControl: "max-age=60"],
                body: ResponseBody(contentLength: 100) { writer in try await writer.write(ByteBuffer(string: "short")) }
            )
        }
        _ = try await cache.get()
        #expect(cache.store.count == 0)
    }

    @Test func aClientThatLeavesDoesNotStopTheStoreOfACompleteResponse() async throws {
        let cache = try CacheHarness { _, _ in self.streamed(10, fields: [.cacheControl: "max-age=60"]) }
        let responder = cache.cache.responder(origin: cache.origin)
        let response = try await responder.respond(
            to: ServerRequest(head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/")),
            context: BasicContext(source: ContextSource(logger: Logger(label: "test"))))
        var leaving: any ResponseBodyWriter = LeavingClient()
        await #expect(throws: CacheTestError.clientLeft) { try await response.body.write(to: &leaving) }
        let next = try await cache.get()
        #expect(next.cacheStatus.contains("hit"))
        #expect(next.body.readableBytes == 10_000)
        #expect(cache.origin.count == 1)
    }

    @Test func behindCompressionEachCodingIsAVariantAndAcceptEncodingIsNormalised() async throws {
        let clock = ManualClock()
        let origin = ScriptedOrigin { request, _ in
            reply(
                .ok, [.cacheControl: "max-age=60", .contentType: "text/plain"],
                body: String(repeating: "compress me ", count: 500))
        }
        let cache = try HTTPCache(store: MemoryCacheStore(clock: clock), clock: clock)
        let compressed = try ResponseCompressionMiddleware<BasicContext>().wrapping(origin)
        let client = TestClient(responder: cache.responder(origin: compressed))
        let gzip = try await client.execute(.get, "/", headerFields: [.acceptEncoding: "gzip, deflate"])
        #expect(gzip.headerFields[.contentEncoding] == "gzip")
        // Another spelling of the same codings is the same variant.
        let again = try await client.execute(.get, "/", headerFields: [.acceptEncoding: "deflate;q=0.5,GZIP"])
        #expect(again.cacheStatus.contains("hit"))
        #expect(again.headerFields[.contentEncoding] == "gzip")
        let plain = try await client.execute(.get, "/")
        #expect(plain.headerFields[.contentEncoding] == nil)
        #expect(plain.cacheStatus.hasPrefix("Strata; fwd=vary-miss"))
        #expect(plain.body.readableBytes == 6_000)
        #expect(try await client.execute(.get, "/").cacheStatus.contains("hit"))
        #expect(origin.count == 2)
        // The origin saw the normalised field.
        #expect(origin.requests.first?.headerFields[.acceptEncoding] == "gzip, deflate")
    }

    @Test func whatSessionsMarkedIsNeverStored() async throws {
        enum Visits: SessionKey {
            typealias Value = Int
            static let name = "visits"
        }
        var configuration = SessionConfiguration()
        configuration.cookieName = "session"
        configuration.dangerouslyAllowInsecureCookie = true
        let sessions = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), configuration: configuration)
        let app = ClosureResponder<BasicContext> { request, context in
            let visits = try await context.session.value(for: Visits.self) ?? 0
            if request.path == "/count" { try await context.session.set(Visits.self, to: visits + 1) }
            return reply(.ok, [.cacheControl: "public, max-age=60"], body: "visits \(visits)")
        }
        let cache = try HTTPCache()
        let client = TestClient(responder: cache.responder(origin: sessions.wrapping(app)))
        // A response that sets the cookie, and one that only read the session: neither stored.
        let counted = try await client.execute(.get, "/count")
        #expect(counted.headerFields[.setCookie] != nil)
        #expect(try await client.execute(.get, "/count").cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
        let cookie = try #require(counted.headerFields[.setCookie]?.split(separator: ";").first.map(String.init))
        _ = try await client.execute(.get, "/read", headerFields: [.cookie: cookie])
        let reread = try await client.execute(.get, "/read", headerFields: [.cookie: cookie])
        #expect(reread.cacheStatus.hasPrefix("Strata; fwd=uri-miss"))
    }

    @Test func aFailingStoreSendsRequestsToTheOriginWithALogLineAndAMetric() async throws {
        let metrics = TestMetrics()
        let logs = LogRecorder()
        var configuration = HTTPCacheConfiguration()
        configuration.metricsFactory = metrics
        let cache = try HTTPCache(store: UnreachableStore(), configuration: configuration, logger: logs.logger())
        let origin = ScriptedOrigin { _, _ in reply(.ok, [.cacheControl: "max-age=60"], body: "from origin") }
        let client = TestClient(responder: cache.responder(origin: origin), logger: logs.logger())
        for _ in 0..<3 { #expect(try await client.execute(.get, "/").bodyString == "from origin") }
        #expect(origin.count == 3)
        #expect(
            logs.messages(atLeast: .warning).contains { $0.hasPrefix("cache store lookup failed; asking the origin") })
        #expect(logs.messages(atLeast: .warning).contains { $0.hasPrefix("cache store write failed") })
        let lookups = try metrics.expectCounter("strata_cache_store_errors_total", [("operation", "lookup")])
        #expect(lookups.totalValue == 3)
    }

    @Test func hitsMissesAndStaleAreCounted() async throws {
        let metrics = TestMetrics()
        let cache = try CacheHarness({ $0.metricsFactory = metrics }) { _, _ in
            reply(.ok, [.cacheControl: "max-age=1, stale-while-revalidate=60"])
        }
        _ = try await cache.get()
        _ = try await cache.get()
        cache.advance(5)
        _ = try await cache.get()
        #expect(try metrics.expectCounter("strata_cache_misses_total").totalValue == 1)
        #expect(try metrics.expectCounter("strata_cache_hits_total").totalValue == 1)
        #expect(try metrics.expectCounter("strata_cache_stale_served_total").totalValue == 1)
    }

    @Test func aPurgeWhoseStoreFailsAnswers503WithALogLine() async throws {
        let logs = LogRecorder()
        var configuration = HTTPCacheConfiguration()
        configuration.purgeAuthorization = { _, _ in true }
        let cache = try HTTPCache(store: UnreachableStore(), configuration: configuration, logger: logs.logger())
        let client = TestClient(
            responder: cache.responder(origin: ScriptedOrigin { _, _ in reply() }), logger: logs.logger())
        let purged = try await client.execute(HTTPRequest.Method("PURGE")!, "/x")
        #expect(purged.status == .serviceUnavailable)
        #expect(logs.messages(atLeast: .error).contains { $0.hasPrefix("PURGE failed: the cache store failed") })
    }
}

enum CacheTestError: Error {
    case originFailed
    case clientLeft
}

/// A client that reads one chunk and goes away.
struct LeavingClient: ResponseBodyWriter {
    var chunks = 0

    mutating func write(_ buffer: ByteBuffer) async throws {
        self.chunks += 1
        if self.chunks > 1 { throw CacheTestError.clientLeft }
    }

    mutating func finish(trailers: HTTPFields?) async throws {}
}

/// A store whose backend cannot be reached: every call fails, as a store's would.
struct UnreachableStore: CacheStore {
    func variants(for key: String) async throws -> [CachedResponse] { throw CacheStoreError(message: "unreachable") }
    func store(_ response: CachedResponse, for key: String) async throws {
        throw CacheStoreError(message: "unreachable")
    }
    func updateMetadata(_ response: CachedResponse, for key: String) async throws {
        throw CacheStoreError(message: "unreachable")
    }
    func remove(_ key: String) async throws { throw CacheStoreError(message: "unreachable") }
    func removeTagged(_ tag: String) async throws -> Int { throw CacheStoreError(message: "unreachable") }
    func removeAll() async throws { throw CacheStoreError(message: "unreachable") }
}
