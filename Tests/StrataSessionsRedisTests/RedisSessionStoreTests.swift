import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataRedis
import StrataRedisTestSupport
import StrataServer
import StrataSessions
import StrataSessionsRedis
import StrataTestSupport
import StrataTesting
import Testing

@testable import SessionsExample

/// The Redis store under the example's routes, against the real server and cluster that
/// `scripts/test.sh` starts, and private servers that are killed.
@Suite struct RedisSessionStoreTests {
    static var logger: Logger { RedisTestEnvironment.logger("strata.test.sessions.redis") }

    static func variable(_ name: String) throws -> String { try RedisTestEnvironment.variable(name) }

    /// A client and a store with a key prefix of the test's own, shut down after `body`.
    static func withStore<Result>(
        url: String? = nil, cluster: Bool = false, _ configure: (inout RedisConfiguration) -> Void = { _ in },
        _ body: (RedisSessionStore, RedisClient) async throws -> Result
    ) async throws -> Result {
        var configuration = try RedisTestEnvironment.configuration(url: url, cluster: cluster)
        // Long timeouts: the whole suite runs in parallel on two cores.
        configuration.acquireTimeout = .seconds(60)
        configuration.commandTimeout = .seconds(30)
        configure(&configuration)
        let client = RedisClient(configuration: configuration, logger: Self.logger)
        let store = RedisSessionStore(client: client, keyPrefix: "test:\(UUID().uuidString.prefix(8))")
        do {
            let result = try await body(store, client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.bodyString.utf8)) as? [String: Any])
    }

    static func client(_ store: RedisSessionStore, failOpen: Bool = false) throws -> TestClient<
        some HTTPResponder<BasicContext>
    > {
        var configuration = SessionConfiguration()
        configuration.failOpen = failOpen
        return TestClient(
            responder: try buildResponder(store: store, configuration: configuration, logger: Self.logger))
    }

    @Test func theExampleFlowWorksAndIDsAreHashedAtRest() async throws {
        try await Self.withStore { store, redis in
            let client = try Self.client(store)
            var jar = Jar()
            _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
            let token = try #require(jar.value)
            let session = try Self.json(try await client.send(.get, "/api/session", jar: &jar))
            #expect(session["name"] as? String == "ada" && session["flash"] as? String == "Welcome, ada!")
            #expect(try Self.json(try await client.send(.post, "/api/count", jar: &jar))["count"] as? Int == 1)

            // The key is a digest; no key or value in Redis contains the ID.
            var keys: [String] = []
            for try await key in redis.scan(match: "\(store.keyPrefix):*") { keys.append(String(buffer: key)) }
            #expect(keys.count == 2, "the session and the user index: \(keys)")
            #expect(!keys.contains { $0.contains(token) })
            let key = store.key(for: try #require(SessionID(token: token)))
            #expect(keys.contains(key.description))
            let fields = try await redis.hgetAll(key)
            #expect(!fields.values.contains { String(buffer: $0).contains(token) })
            // Native expiry: the idle timeout (30 minutes by default).
            let ttl = try await redis.send(RedisCommand("PTTL", key: key)).int ?? -1
            #expect(ttl > 29 * 60_000 && ttl <= 30 * 60_000, "\(ttl)")

            _ = try await client.send(.post, "/logout", jar: &jar)
            #expect(try await redis.exists(key) == 0)
            var stale = Jar(value: token)
            #expect(try Self.json(try await client.send(.get, "/api/session", jar: &stale))["name"] is NSNull)
        }
    }

    @Test func parallelRequestsMergeAndIncrementsAreExact() async throws {
        try await Self.withStore { store, _ in
            let client = try Self.client(store)
            var jar = Jar()
            _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
            let cookie = jar
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        var mine = cookie
                        let response = try await client.send(.post, "/api/count", jar: &mine)
                        #expect(response.status == .ok, "\(response.bodyString)")
                    }
                }
                try await group.waitForAll()
            }
            #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["count"] as? Int == 200)

            // 50 parallel requests, each setting a key of its own: all 50 survive.
            let token = try #require(jar.value)
            let id = try #require(SessionID(token: token))
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let changes = SessionChanges(
                            set: ["k\(index)": Array("\(index)".utf8)], lastSeen: SystemWallClock().now())
                        return try await store.apply(
                            changes, to: id, expiresAt: SystemWallClock().now() + .seconds(600))
                    }
                }
                for try await applied in group { #expect(applied) }
            }
            let record = try #require(try await store.load(id))
            #expect((0..<50).allSatisfy { record.values["k\($0)"] == Array("\($0)".utf8) })
            #expect(record.values["name"] != nil && record.user == "ada", "and nothing else was lost")
        }
    }

    @Test func aChangeAfterDestroyIsNotAppliedAndRenameTakesTheSessionOnce() async throws {
        try await Self.withStore { store, _ in
            let clock = SystemWallClock()
            let id = SessionID()
            let later = clock.now() + .seconds(600)
            #expect(
                try await store.create(
                    id, record: SessionRecord(createdAt: clock.now(), lastSeen: clock.now()), expiresAt: later))
            #expect(
                try await store.create(
                    id, record: SessionRecord(createdAt: clock.now(), lastSeen: clock.now()), expiresAt: later) == false
            )
            let first = SessionID()
            let second = SessionID()
            async let a = store.rename(id, to: first, expiresAt: later)
            async let b = store.rename(id, to: second, expiresAt: later)
            let outcomes = try await [a, b]
            #expect(outcomes.filter { $0 }.count == 1, "exactly one rename takes the session")
            let survivor = outcomes[0] ? first : second
            try await store.destroy(survivor)
            let late = SessionChanges(set: ["late": [1]], lastSeen: clock.now())
            #expect(try await store.apply(late, to: survivor, expiresAt: later) == false)
            #expect(try await store.load(survivor) == nil, "not brought back")
            #expect(
                try await store.compareAndSwap("n", in: survivor, expected: nil, new: [1], expiresAt: later) == .gone)
        }
    }

    @Test func revokingAUsersSessionsWorksOnTheCluster() async throws {
        try await Self.withStore(cluster: true) { store, redis in
            let client = try Self.client(store)
            var jars: [Jar] = []
            for _ in 0..<6 {
                var jar = Jar()
                _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
                jars.append(jar)
            }
            var other = Jar()
            _ = try await client.send(.post, "/login", jar: &other, body: "name=bo")
            // The sessions are spread over the cluster's slots.
            let ids = jars.compactMap { $0.value.flatMap { SessionID(token: $0) } }
            let slots = Set(ids.map { store.key(for: $0).slot })
            #expect(ids.count == 6)
            #expect(slots.count == 6)
            #expect(try await store.sessions(ofUser: "ada").count == 6)
            var first = jars[0]
            let page = try await client.send(.get, "/", jar: &first).bodyString
            #expect(page.contains("(this one)"))
            _ = try await client.send(.post, "/logout-everywhere", jar: &first)
            for var jar in jars.dropFirst() {
                #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["name"] is NSNull)
            }
            #expect(try await store.sessions(ofUser: "ada").isEmpty)
            #expect(try Self.json(try await client.send(.get, "/api/session", jar: &other))["name"] as? String == "bo")
            _ = redis
        }
    }

    @Test func aKilledRedisGives503OrAnonymousAndNothingIsLostOnceItIsBack() async throws {
        // Durable on every write, so a SIGKILL loses nothing that was acknowledged.
        let durable = ["--appendonly", "yes", "--appendfsync", "always"]
        let server = try RedisServerProcess()
        try await server.start(durable)
        do {
            try await Self.withStore(
                url: server.url,
                {
                    $0.maxReconnectDelay = .milliseconds(200)
                }
            ) {
                store, _ in
                let closed = try Self.client(store)
                let open = try Self.client(store, failOpen: true)
                var jar = Jar()
                _ = try await closed.send(.post, "/login", jar: &jar, body: "name=ada")
                #expect(try Self.json(try await closed.send(.post, "/api/count", jar: &jar))["count"] as? Int == 1)

                try await server.kill()
                let refused = try await closed.send(.get, "/api/session", jar: &jar)
                #expect(refused.status == .serviceUnavailable)
                let anonymous = try await open.send(.get, "/api/session", jar: &jar)
                #expect(anonymous.status == .ok)
                #expect(try Self.json(anonymous)["name"] is NSNull)
                #expect(jar.value != nil, "the cookie is kept")

                try await server.start(durable)
                var last = ""
                let back = await eventually {
                    guard let response = try? await closed.send(.get, "/api/session", jar: &jar) else { return false }
                    last = "\(response.status) \(response.bodyString)"
                    return response.status == .ok && (try? Self.json(response))?["name"] as? String == "ada"
                }
                #expect(back, "the session is there again, as it was; last answer: \(last)")
                #expect(try Self.json(try await closed.send(.post, "/api/count", jar: &jar))["count"] as? Int == 2)
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
