import Foundation
import HTTPTypes
import Logging
import MetricsTestKit
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

@testable import SessionsExample
@testable import StrataSessions

/// The middleware through the example's routes and a few of its own, in process.
@Suite struct SessionMiddlewareTests {
    enum Note: SessionKey {
        typealias Value = String
        static let name = "note"
    }

    static func client(
        store: some SessionStore = MemorySessionStore(), configuration: SessionConfiguration = SessionConfiguration(),
        clock: some WallClock = SystemWallClock()
    ) throws -> TestClient<some HTTPResponder<BasicContext>> {
        TestClient(
            responder: try buildResponder(store: store, configuration: configuration, clock: clock, logger: quietLogger)
        )
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.bodyString.utf8)) as? [String: Any])
    }

    @Test func aRequestThatNeverTouchesTheSessionCostsNothing() async throws {
        let store = MemorySessionStore()
        let router = Router<BasicContext>()
        router.get("/plain") { _, _ in ServerResponse(status: .ok, body: .init(string: "plain")) }
        let sessions = try SessionMiddleware<BasicContext>(store: store, logger: quietLogger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        let response = try await client.execute(.get, "/plain", headerFields: [.cookie: "__Host-session=whatever"])
        #expect(response.status == .ok)
        #expect(response.headerFields[.setCookie] == nil)
        #expect(response.headerFields[.vary] == nil)
        #expect(store.count == 0)
    }

    @Test func loginSetsAHardenedCookieAndTheFlashShowsOnce() async throws {
        let client = try Self.client()
        var jar = Jar()
        let login = try await client.send(.post, "/login", jar: &jar, body: "name=Ada+L%C3%A9")
        #expect(login.status == .seeOther)
        let setCookie = try #require(login.headerFields[.setCookie])
        let cookie = try #require(Cookie(setCookieValue: setCookie))
        #expect(cookie.name == "__Host-session" && cookie.secure && cookie.httpOnly && cookie.path == "/")
        #expect(cookie.sameSite == .lax && cookie.domain == nil && (cookie.maxAge ?? 0) > 0)
        #expect(SessionID(token: cookie.value) != nil, "256 bits in base64url")
        #expect(login.headerFields[.cacheControl]?.contains("no-cache=\"Set-Cookie\"") == true)
        #expect(login.headerFields[.vary]?.contains("Cookie") == true)

        let first = try Self.json(try await client.send(.get, "/api/session", jar: &jar))
        #expect(first["name"] as? String == "Ada Lé")
        #expect(first["flash"] as? String == "Welcome, Ada Lé!")
        let second = try Self.json(try await client.send(.get, "/api/session", jar: &jar))
        #expect(second["flash"] is NSNull, "read once")
        #expect(second["name"] as? String == "Ada Lé")
    }

    @Test func theServerNeverAdoptsAnIDItDidNotIssue() async throws {
        let store = MemorySessionStore()
        let client = try Self.client(store: store)
        let chosen = SessionID()
        var jar = Jar(value: chosen.token)
        let count = try await client.send(.post, "/api/count", jar: &jar)
        #expect(try Self.json(count)["count"] as? Int == 1)
        #expect(jar.value != nil && jar.value != chosen.token, "a new ID was issued")
        #expect(try await store.load(chosen) == nil)
    }

    @Test func afterLoginTheOldIDIsDead() async throws {
        let client = try Self.client()
        var jar = Jar()
        _ = try await client.send(.post, "/api/count", jar: &jar)
        let anonymous = try #require(jar.value)
        _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
        #expect(jar.value != anonymous)
        var stale = Jar(value: anonymous)
        let old = try Self.json(try await client.send(.get, "/api/session", jar: &stale))
        #expect(old["name"] is NSNull && old["count"] as? Int == 0)
        let current = try Self.json(try await client.send(.get, "/api/session", jar: &jar))
        #expect(current["name"] as? String == "ada" && current["count"] as? Int == 1, "data kept across the new ID")
    }

    @Test(arguments: [
        "not-a-session-id", "", String(repeating: "A", count: 42), String(repeating: "A", count: 42) + "B",
        SessionID().token.dropLast() + "%", "\u{00e9}" + String(repeating: "A", count: 42),
    ])
    func malformedAndUnknownCookiesAreNoSessionNeverAnError(_ value: String) async throws {
        let metrics = TestMetrics()
        let router = Router<BasicContext>()
        router.get("/who") { _, context in
            ServerResponse(
                status: .ok, body: .init(string: try await context.session.value(for: Note.self) ?? "nobody"))
        }
        let sessions = try SessionMiddleware<BasicContext>(
            store: MemorySessionStore(), logger: quietLogger, metricsFactory: metrics)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        let response = try await client.execute(.get, "/who", headerFields: [.cookie: "__Host-session=\(value)"])
        #expect(response.status == .ok && response.bodyString == "nobody")
        let rejected = try metrics.expectCounter("strata_sessions_rejected_total", [("reason", "malformed")])
        #expect(rejected.totalValue == (value.isEmpty ? 1 : 1))
    }

    @Test func anUnknownWellFormedIDIsCountedAsUnknown() async throws {
        let metrics = TestMetrics()
        let router = Router<BasicContext>()
        router.get("/who") { _, context in
            ServerResponse(
                status: .ok, body: .init(string: try await context.session.value(for: Note.self) ?? "nobody"))
        }
        let sessions = try SessionMiddleware<BasicContext>(
            store: MemorySessionStore(), logger: quietLogger, metricsFactory: metrics)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        let response = try await client.execute(
            .get, "/who", headerFields: [.cookie: "__Host-session=\(SessionID().token)"])
        #expect(response.bodyString == "nobody")
        #expect(try metrics.expectCounter("strata_sessions_rejected_total", [("reason", "unknown")]).totalValue == 1)
    }

    @Test func idleTimeoutAndAbsoluteLifetimeAreEnforcedByTheServer() async throws {
        let clock = ManualClock()
        var configuration = SessionConfiguration()
        configuration.idleTimeout = .seconds(600)
        configuration.absoluteTimeout = .seconds(3600)
        // The store keeps sessions longer than the policy: the middleware must still end them.
        let store = MemorySessionStore(clock: ManualClock())
        let client = try Self.client(store: store, configuration: configuration, clock: clock)
        var jar = Jar()
        _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
        clock.advance(by: .seconds(599))
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["name"] as? String == "ada")
        clock.advance(by: .seconds(601))
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["name"] is NSNull, "idle")

        // Active every five minutes, and logging in again (a new ID) along the way: still over
        // after an hour from the start.
        var active = Jar()
        _ = try await client.send(.post, "/login", jar: &active, body: "name=bo")
        for step in 1...11 {
            clock.advance(by: .seconds(300))
            if step == 6 { _ = try await client.send(.post, "/login", jar: &active, body: "name=bo") }
            let name = try Self.json(try await client.send(.get, "/api/session", jar: &active))["name"]
            if step < 12 && step * 300 < 3600 {
                #expect(name as? String == "bo", "step \(step)")
            }
        }
        clock.advance(by: .seconds(301))
        #expect(
            try Self.json(try await client.send(.get, "/api/session", jar: &active))["name"] is NSNull,
            "the absolute lifetime, not extended by the new ID")
    }

    @Test func parallelRequestsSettingDifferentKeysAllSurvive() async throws {
        let store = MemorySessionStore()
        let router = Router<BasicContext>()
        router.post("/set/:key") { request, context in
            let key = request.path.split(separator: "/").last.map(String.init) ?? ""
            try await context.session.set(named: key, bytes: Array("\"v-\(key)\"".utf8))
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        router.get("/keys") { _, context in
            ServerResponse(
                status: .ok,
                body: .init(string: try await context.session.storedNames().sorted().joined(separator: ",")))
        }
        let sessions = try SessionMiddleware<BasicContext>(store: store, logger: quietLogger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        var jar = Jar()
        _ = try await client.send(.post, "/set/seed", jar: &jar)
        let cookie = jar
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    var mine = cookie
                    let response = try await client.send(.post, "/set/k\(index)", jar: &mine)
                    #expect(response.status == .ok)
                }
            }
            try await group.waitForAll()
        }
        let keys = try await client.send(.get, "/keys", jar: &jar).bodyString.split(separator: ",")
        #expect(keys.count == 51, "\(keys)")
    }

    @Test func twoHundredParallelAtomicIncrementsEndAtTwoHundred() async throws {
        let client = try Self.client()
        var jar = Jar()
        _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
        let cookie = jar
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    var mine = cookie
                    let response = try await client.send(.post, "/api/count", jar: &mine)
                    #expect(response.status == .ok)
                }
            }
            try await group.waitForAll()
        }
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["count"] as? Int == 200)
    }

    @Test func aRequestThatFinishesAfterLogoutDoesNotBringTheSessionBack() async throws {
        let store = MemorySessionStore()
        let gate = Gate()
        let router = Router<BasicContext>()
        router.post("/note") { _, context in
            try await context.session.set(Note.self, to: "early")
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        router.post("/slow-note") { _, context in
            let session = try context.session
            _ = try await session.value(for: Note.self)  // loaded before the logout
            await gate.wait()
            try await session.set(Note.self, to: "late")
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        router.post("/logout") { _, context in
            try await context.session.destroy()
            return ServerResponse(status: .ok, body: .init(string: "bye"))
        }
        router.get("/note") { _, context in
            ServerResponse(status: .ok, body: .init(string: try await context.session.value(for: Note.self) ?? "none"))
        }
        let sessions = try SessionMiddleware<BasicContext>(store: store, logger: quietLogger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        var jar = Jar()
        _ = try await client.send(.post, "/note", jar: &jar)
        let cookie = jar
        let slow = Task {
            var mine = cookie
            return try await client.send(.post, "/slow-note", jar: &mine)
        }
        #expect(await eventually { gate.waiting == 1 })
        var logout = cookie
        let bye = try await client.send(.post, "/logout", jar: &logout)
        #expect(logout.value == nil, "the logout clears the cookie")
        #expect(bye.headerFields[.setCookie]?.contains("Max-Age=0") == true)
        gate.open()
        let late = try await slow.value
        #expect(late.status == .ok)
        #expect(late.headerFields[.setCookie] == nil, "the late request neither revives nor clears")
        var stale = cookie
        #expect(try await client.send(.get, "/note", jar: &stale).bodyString == "none")
        #expect(store.count == 0)
    }

    @Test func twoSimultaneousLoginsDoNotLogTheUserOut() async throws {
        let gate = Gate()
        let router = Router<BasicContext>()
        router.post("/count") { _, context in
            try await context.session.update(PageCount.self) { $0 = ($0 ?? 0) + 1 }
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        router.post("/login") { _, context in
            let session = try context.session
            _ = try await session.exists
            await gate.wait()
            try await session.authenticate(user: "ada")
            return ServerResponse(status: .ok, body: .init(string: "in"))
        }
        router.get("/user") { _, context in
            ServerResponse(status: .ok, body: .init(string: try await context.session.user ?? "nobody"))
        }
        let sessions = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), logger: quietLogger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        var jar = Jar()
        _ = try await client.send(.post, "/count", jar: &jar)
        let cookie = jar
        let logins = (0..<2).map { _ in
            Task {
                var mine = cookie
                _ = try await client.send(.post, "/login", jar: &mine)
                return mine
            }
        }
        #expect(await eventually { gate.waiting == 2 })
        gate.open()
        for login in logins {
            var jar = try await login.value
            #expect(jar.value != nil && jar.value != cookie.value, "each login ends with a working new cookie")
            #expect(try await client.send(.get, "/user", jar: &jar).bodyString == "ada")
        }
    }

    @Test func logoutEverywhereEndsTheUsersOtherSessions() async throws {
        let client = try Self.client()
        var laptop = Jar()
        var phone = Jar()
        _ = try await client.send(.post, "/login", jar: &laptop, body: "name=ada")
        _ = try await client.send(.post, "/login", jar: &phone, body: "name=ada")
        var other = Jar()
        _ = try await client.send(.post, "/login", jar: &other, body: "name=bo")
        let page = try await client.send(.get, "/", jar: &laptop).bodyString
        #expect(page.components(separatedBy: "class=\"session\"").count - 1 == 2, "both of ada's sessions listed")
        #expect(page.contains("(this one)"))
        _ = try await client.send(.post, "/logout-everywhere", jar: &laptop)
        #expect(laptop.value == nil)
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &phone))["name"] is NSNull)
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &other))["name"] as? String == "bo")
    }

    @Test func aFailedStoreAnswers503OrServesAnonymouslyWhenFailingOpen() async throws {
        let store = FailingStore()
        let closed = try Self.client(store: store)
        var jar = Jar()
        _ = try await closed.send(.post, "/login", jar: &jar, body: "name=ada")
        store.failing.store(true, ordering: .relaxed)
        let refused = try await closed.send(.get, "/api/session", jar: &jar)
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.headerFields[.retryAfter] == "1")

        var configuration = SessionConfiguration()
        configuration.failOpen = true
        let open = try Self.client(store: store, configuration: configuration)
        let anonymous = try await open.send(.get, "/api/session", jar: &jar)
        #expect(anonymous.status == .ok)
        #expect(try Self.json(anonymous)["name"] is NSNull)
        let count = try await open.send(.post, "/api/count", jar: &jar)
        #expect(count.status == .ok && count.headerFields[.setCookie] == nil, "nothing saved")
        // The store's data is untouched: once back, the session is as it was.
        store.failing.store(false, ordering: .relaxed)
        #expect(try Self.json(try await closed.send(.get, "/api/session", jar: &jar))["name"] as? String == "ada")
    }

    @Test func varyAndCacheControlAreMergedNotClobbered() async throws {
        let router = Router<BasicContext>()
        router.post("/note") { _, context in
            try await context.session.set(Note.self, to: "x")
            return ServerResponse(
                status: .ok, headerFields: [.vary: "Accept-Encoding", .cacheControl: "private"],
                body: .init(string: "ok"))
        }
        let sessions = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), logger: quietLogger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        let response = try await client.execute(.post, "/note")
        #expect(response.headerFields[.vary] == "Accept-Encoding, Cookie")
        #expect(response.headerFields[.cacheControl] == "private, no-cache=\"Set-Cookie\"")
    }

    @Test func twoMiddlewaresGiveTwoIndependentSessions() async throws {
        var admin = SessionConfiguration()
        admin.cookieName = "__Host-admin"
        let store = MemorySessionStore()
        let user = try SessionMiddleware<BasicContext>(store: store, logger: quietLogger)
        let staff = try SessionMiddleware<BasicContext>(store: store, configuration: admin, logger: quietLogger)
        let router = Router<BasicContext>()
        router.post("/both") { _, context in
            try await context.session.set(Note.self, to: "user")
            try await context.session(named: "__Host-admin").set(Note.self, to: "admin")
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        let client = TestClient(
            responder: MiddlewareStack(BasicContext.self) {
                user; staff
            }.wrapping(router))
        let response = try await client.execute(.post, "/both")
        let cookies = response.headerFields[values: .setCookie].compactMap { Cookie(setCookieValue: $0) }
        #expect(Set(cookies.map(\.name)) == ["__Host-session", "__Host-admin"])
        #expect(Set(cookies.map(\.value)).count == 2)
        #expect(store.count == 2)
    }

    @Test func configurationsAreValidatedWithEveryProblem() throws {
        var insecure = SessionConfiguration()
        insecure.dangerouslyAllowInsecureCookie = true
        insecure.absoluteTimeout = .seconds(60)
        do {
            _ = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), configuration: insecure)
            Issue.record("an insecure __Host- cookie must be refused")
        } catch {
            #expect(error.problems.count == 2, "\(error)")
            #expect(error.description.contains("__Host-"))
        }
        insecure.cookieName = "dev-session"
        insecure.absoluteTimeout = .seconds(24 * 3600)
        let middleware = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), configuration: insecure)
        #expect(middleware.configuration.cookieName == "dev-session")
        var partitioned = SessionConfiguration()
        partitioned.partitioned = true
        partitioned.sameSite = .none
        _ = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), configuration: partitioned)
    }
}
