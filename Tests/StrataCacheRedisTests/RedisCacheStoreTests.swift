import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataCache
import StrataCacheRedis
import StrataRedis
import StrataRedisTestSupport
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

/// The Redis store against the real server and cluster that `scripts/test.sh` starts, two
/// caching proxies sharing one Redis, and a Redis killed mid-test.
@Suite struct RedisCacheStoreTests {
    static var logger: Logger { RedisTestEnvironment.logger("strata.test.cache.redis") }

    static func variable(_ name: String) throws -> String { try RedisTestEnvironment.variable(name) }

    static func configuration(url: String? = nil, cluster: Bool = false) throws -> RedisConfiguration {
        try RedisTestEnvironment.configuration(url: url, cluster: cluster)
    }

    /// A client, shut down after `body`.
    static func withClient<Result>(
        _ configuration: RedisConfiguration, _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        try await RedisTestEnvironment.withClient(configuration, logger: Self.logger, body)
    }

    static var prefix: String { "test:cache:\(UUID().uuidString.prefix(8))" }

    private func entry(_ variant: String, body: String, tags: [String] = [], until: Timestamp) -> CachedResponse {
        CachedResponse(
            status: .ok, headerFields: [.contentType: "text/plain", .vary: "Accept-Language"],
            body: ByteBuffer(string: body), bodyLength: body.utf8.count, variantKey: variant,
            requestTime: Timestamp(secondsSince1970: 1), responseTime: Timestamp(secondsSince1970: 2), ageValue: 0,
            tags: tags, storedUntil: until)
    }

    @Test(arguments: [false, true]) func theStoreKeepsFindsUpdatesAndForgets(cluster: Bool) async throws {
        try await Self.withClient(try Self.configuration(cluster: cluster)) { client in
            let clock = SystemWallClock()
            let store = RedisCacheStore(client: client, keyPrefix: Self.prefix)
            let until = clock.now() + .seconds(60)
            try await store.store(self.entry("fr", body: "bonjour", tags: ["greetings"], until: until), for: "GET /a")
            try await store.store(self.entry("de", body: "hallo", until: until), for: "GET /a")
            try await store.store(self.entry("", body: "b", tags: ["greetings"], until: until), for: "GET /b")
            let variants = try await store.variants(for: "GET /a").sorted { $0.variantKey < $1.variantKey }
            #expect(variants.map(\.variantKey) == ["de", "fr"])
            #expect(variants.allSatisfy { $0.body == nil })
            #expect(try await store.body(of: variants[1], for: "GET /a") == ByteBuffer(string: "bonjour"))
            // A 304's update changes the metadata and keeps the body.
            var updated = variants[1]
            updated.headerFields[.eTag] = "\"2\""
            try await store.updateMetadata(updated, for: "GET /a")
            let after = try await store.variants(for: "GET /a").first { $0.variantKey == "fr" }
            #expect(after?.headerFields[.eTag] == "\"2\"")
            #expect(try await store.body(of: updated, for: "GET /a") == ByteBuffer(string: "bonjour"))
            // Tags reach both URLs; a purge leaves nothing, bodies included.
            #expect(try await store.removeTagged("greetings") == 2)
            #expect(try await store.variants(for: "GET /a").isEmpty)
            #expect(try await store.variants(for: "GET /b").isEmpty)
            #expect(try await store.body(of: variants[1], for: "GET /a") == nil)
        }
    }

    @Test func entriesExpireNativelyAndOversizedBodiesAreNotStored() async throws {
        try await Self.withClient(try Self.configuration()) { client in
            let prefix = Self.prefix
            let store = RedisCacheStore(client: client, keyPrefix: prefix, maximumBodySize: 10)
            let until = SystemWallClock().now() + .seconds(30)
            try await store.store(self.entry("", body: "small", until: until), for: "k")
            try await store.store(self.entry("", body: "far too large a body", until: until), for: "big")
            #expect(try await store.variants(for: "big").isEmpty)
            let digest = SHA1.hexDigest(Array("k".utf8))
            let ttl = try await client.ttl(RedisKey("\(prefix):{\(digest)}"))
            #expect((1...30).contains(ttl))
            let bodyTTL = try await client.ttl(RedisKey("\(prefix):{\(digest)}:b:\(SHA1.hexDigest([]))"))
            #expect((1...30).contains(bodyTTL))
            try await store.removeAll()
            #expect(try await store.variants(for: "k").isEmpty)
        }
    }

    @Test func twoCachesSharingRedisShareEntriesAndPurges() async throws {
        try await Self.withClient(try Self.configuration()) { client in
            let prefix = Self.prefix
            let origin = CountingOrigin()
            let first = try HTTPCache(store: RedisCacheStore(client: client, keyPrefix: prefix))
            let second = try HTTPCache(store: RedisCacheStore(client: client, keyPrefix: prefix))
            let one = TestClient(responder: first.responder(origin: origin))
            let two = TestClient(responder: second.responder(origin: origin))
            _ = try await one.execute(.get, "/shared")
            let hit = try await two.execute(.get, "/shared")
            #expect(hit.bodyString == "origin answer 1")
            #expect(hit.headerFields[.cacheStatus]?.hasPrefix("Strata; hit") == true)
            try await first.purge(tag: "shared")
            #expect(try await two.execute(.get, "/shared").bodyString == "origin answer 2")
        }
    }

    @Test func twoCachingProxiesShareEntriesAndPurgesThroughRedis() async throws {
        try await RedisServerProcess.with { redis in
            let origin = CountingOrigin()
            try await withLiveServer(responder: origin, logger: Self.logger) { port in
                let arguments = ["--origin", "http://127.0.0.1:\(port)", "--redis-url", redis.url, "--purge"]
                let a = try await ExampleProcess("CachingProxyExample", arguments: arguments)
                defer { a.stop() }
                let b = try await ExampleProcess("CachingProxyExample", arguments: arguments)
                defer { b.stop() }
                // Behind one load balancer, both instances see the same Host.
                let curl = try ExternalProcess.curl()
                let host = ["-H", "Host: app.example"]
                let first = try await ExternalProcess.run(curl, host + ["-s", "http://127.0.0.1:\(a.port)/page"])
                #expect(first.stdout == "origin answer 1")
                let second = try await ExternalProcess.run(curl, host + ["-s", "http://127.0.0.1:\(b.port)/page"])
                #expect(second.stdout == "origin answer 1")
                #expect(origin.count == 1)
                let purged = try await ExternalProcess.run(
                    curl, host + ["-s", "-X", "PURGE", "http://127.0.0.1:\(a.port)/page"])
                #expect(purged.stdout == "purged\n")
                let third = try await ExternalProcess.run(curl, host + ["-s", "http://127.0.0.1:\(b.port)/page"])
                #expect(third.stdout == "origin answer 2")
            }
        }
    }

    @Test func aRedisKilledMidTestLeavesRequestsToTheOrigin() async throws {
        try await RedisServerProcess.with { server in
            var configuration = try Self.configuration(url: server.url)
            configuration.connectTimeout = .milliseconds(500)
            configuration.commandTimeout = .seconds(2)
            configuration.acquireTimeout = .seconds(2)
            let logs = LogRecorder()
            try await Self.withClient(configuration) { client in
                let origin = CountingOrigin()
                let cache = try HTTPCache(
                    store: RedisCacheStore(client: client, keyPrefix: Self.prefix), logger: logs.logger())
                let http = TestClient(responder: cache.responder(origin: origin), logger: logs.logger())
                _ = try await http.execute(.get, "/")
                #expect(try await http.execute(.get, "/").headerFields[.cacheStatus]?.hasPrefix("Strata; hit") == true)
                try await server.kill()
                let after = try await http.execute(.get, "/")
                #expect(after.status == .ok)
                #expect(after.bodyString == "origin answer 2")
                #expect(logs.messages(atLeast: .warning).contains { $0.hasPrefix("cache store lookup failed") })
            }
        }
    }
}

/// An origin that numbers its answers, fresh for a minute and tagged `shared`.
final class CountingOrigin: HTTPResponder, Sendable {
    typealias Context = BasicContext
    private let counter = Mutex(0)

    var count: Int { self.counter.withLock { $0 } }

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        let number = self.counter.withLock { count in
            count += 1
            return count
        }
        return ServerResponse(
            status: .ok, headerFields: [.cacheControl: "max-age=60", .cacheTag: "shared"],
            body: ResponseBody(string: "origin answer \(number)"))
    }
}
