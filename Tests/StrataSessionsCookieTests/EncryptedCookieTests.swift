import Crypto
import Foundation
import HTTPTypes
import Logging
import Strata
import StrataServer
import StrataSessions
import StrataSessionsCookie
import StrataTestSupport
import StrataTesting
import Testing

@testable import SessionsExample

/// Sessions sealed into their cookie: what opens, what does not, and the example on top.
@Suite struct EncryptedCookieTests {
    enum Note: SessionKey {
        typealias Value = String
        static let name = "note"
    }

    static var logger: Logger {
        var logger = Logger(label: "strata.test.sessions.cookie")
        logger.logLevel = .critical
        return logger
    }

    static func record(_ clock: ManualClock) -> SessionRecord {
        SessionRecord(
            values: ["note": Array("\"hello\"".utf8)], createdAt: clock.now(), lastSeen: clock.now(), user: "ada")
    }

    @Test func tamperedTruncatedRetiredMovedAndExpiredValuesDoNotOpen() throws {
        let clock = ManualClock()
        let old = SymmetricKey(size: .bits256)
        let new = SymmetricKey(size: .bits256)
        let sealer = try EncryptedCookieSealer(keys: [old])
        let later = clock.now() + .seconds(600)
        let value = try sealer.seal(Self.record(clock), cookieName: "__Host-session", expiresAt: later)
        #expect(sealer.open(value, cookieName: "__Host-session", now: clock.now()) == Self.record(clock))
        #expect(!value.contains("hello") && !value.contains("ada"), "encrypted, not just signed")

        // Every single-character change is caught.
        var bytes = Array(value.utf8)
        for index in stride(from: 0, to: bytes.count, by: 7) {
            let original = bytes[index]
            bytes[index] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(
                sealer.open(String(decoding: bytes, as: UTF8.self), cookieName: "__Host-session", now: clock.now())
                    == nil)
            bytes[index] = original
        }
        #expect(sealer.open(String(value.dropLast(5)), cookieName: "__Host-session", now: clock.now()) == nil)
        #expect(sealer.open("", cookieName: "__Host-session", now: clock.now()) == nil)
        #expect(sealer.open("!!not base64!!", cookieName: "__Host-session", now: clock.now()) == nil)
        #expect(sealer.open(value, cookieName: "__Host-admin", now: clock.now()) == nil, "moved to another name")
        let otherPurpose = try EncryptedCookieSealer(keys: [old], purpose: "csrf")
        #expect(otherPurpose.open(value, cookieName: "__Host-session", now: clock.now()) == nil)
        #expect(sealer.open(value, cookieName: "__Host-session", now: later) == nil, "expired inside the seal")

        // Rotation: the new key seals, the old one still opens; dropping it retires its cookies.
        let rotated = try EncryptedCookieSealer(keys: [new, old])
        #expect(rotated.open(value, cookieName: "__Host-session", now: clock.now()) != nil)
        let resealed = try rotated.seal(Self.record(clock), cookieName: "__Host-session", expiresAt: later)
        #expect(sealer.open(resealed, cookieName: "__Host-session", now: clock.now()) == nil, "sealed with the new key")
        let retired = try EncryptedCookieSealer(keys: [new])
        #expect(retired.open(value, cookieName: "__Host-session", now: clock.now()) == nil)
        #expect(retired.open(resealed, cookieName: "__Host-session", now: clock.now()) != nil)
    }

    @Test func badKeysAreRefusedAtInit() {
        #expect(throws: EncryptedCookieSealerError.self) { try EncryptedCookieSealer(keys: []) }
        #expect(throws: EncryptedCookieSealerError.self) {
            try EncryptedCookieSealer(keys: [SymmetricKey(size: .bits128)])
        }
    }

    static func client(_ sealer: EncryptedCookieSealer, clock: ManualClock = ManualClock()) throws -> TestClient<
        some HTTPResponder<BasicContext>
    > {
        TestClient(
            responder: try buildResponder(
                store: MemorySessionStore(), sealer: sealer, clock: clock, logger: Self.logger))
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.bodyString.utf8)) as? [String: Any])
    }

    @Test func theExampleRunsOnSealedCookies() async throws {
        let clock = ManualClock()
        let client = try Self.client(try EncryptedCookieSealer(keys: [SymmetricKey(size: .bits256)]), clock: clock)
        var jar = Jar()
        let login = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
        let setCookie = try #require(login.headerFields[.setCookie])
        let cookie = try #require(Cookie(setCookieValue: setCookie))
        #expect(cookie.secure && cookie.httpOnly && cookie.name == "__Host-session")
        let first = try Self.json(try await client.send(.get, "/api/session", jar: &jar))
        #expect(first["name"] as? String == "ada" && first["flash"] as? String == "Welcome, ada!")
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["flash"] is NSNull)
        #expect(try Self.json(try await client.send(.post, "/api/count", jar: &jar))["count"] as? Int == 1)
        #expect(try Self.json(try await client.send(.post, "/api/count", jar: &jar))["count"] as? Int == 2)
        let page = try await client.send(.get, "/", jar: &jar)
        #expect(page.status == .ok && page.bodyString.contains("ada"))
        #expect(try await client.send(.post, "/logout-everywhere", jar: &jar).status == .notImplemented)

        // The server's idle timeout, not only the cookie's lifetime.
        clock.advance(by: .seconds(31 * 60))
        #expect(try Self.json(try await client.send(.get, "/api/session", jar: &jar))["name"] is NSNull)
    }

    @Test func aTamperedCookieIsNoSessionAndLogoutClearsIt() async throws {
        let client = try Self.client(try EncryptedCookieSealer(keys: [SymmetricKey(size: .bits256)]))
        var jar = Jar()
        _ = try await client.send(.post, "/login", jar: &jar, body: "name=ada")
        let value = try #require(jar.value)
        var tampered = Jar(value: String(value.dropLast()) + (value.hasSuffix("A") ? "B" : "A"))
        let response = try await client.send(.get, "/api/session", jar: &tampered)
        #expect(response.status == .ok)
        #expect(try Self.json(response)["name"] is NSNull)
        let logout = try await client.send(.post, "/logout", jar: &jar)
        #expect(logout.headerFields[.setCookie]?.contains("Max-Age=0") == true)
        #expect(jar.value == nil)
    }

    @Test func aSessionTooLargeForACookieFailsAtCommitWithATypedError() async throws {
        let router = Router<BasicContext>()
        router.post("/big") { _, context in
            try await context.session.set(Note.self, to: String(repeating: "x", count: 5000))
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        router.post("/small") { _, context in
            try await context.session.set(Note.self, to: "x")
            return ServerResponse(status: .ok, body: .init(string: "ok"))
        }
        let sessions = try SessionMiddleware<BasicContext>(
            sealer: try EncryptedCookieSealer(keys: [SymmetricKey(size: .bits256)]), logger: Self.logger)
        let client = TestClient(responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router))
        let big = try await client.execute(.post, "/big")
        #expect(big.status == .internalServerError)
        #expect(big.headerFields[.setCookie] == nil, "nothing half-saved")
        let small = try await client.execute(.post, "/small")
        #expect(small.status == .ok && small.headerFields[.setCookie] != nil)
    }
}
