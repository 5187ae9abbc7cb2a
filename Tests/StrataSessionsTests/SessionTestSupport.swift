import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataSessions
import StrataTesting
import Synchronization

/// What a browser keeps of the session cookie.
struct Jar: Sendable {
    var name = "__Host-session"
    var value: String?

    /// Takes the session cookie a response sets (a cleared cookie empties the jar).
    mutating func take(_ response: TestResponse) {
        for field in response.headerFields where field.name == .setCookie {
            guard let cookie = Cookie(setCookieValue: field.value), cookie.name == self.name else { continue }
            self.value = (cookie.maxAge ?? 1) <= 0 || cookie.value.isEmpty ? nil : cookie.value
        }
    }

    var headers: HTTPFields {
        guard let value else { return [:] }
        return [.cookie: "\(self.name)=\(value)"]
    }
}

extension TestClient {
    /// Sends a request with the jar's cookie and keeps what the response sets.
    func send(
        _ method: HTTPRequest.Method, _ path: String, jar: inout Jar, body: String? = nil
    ) async throws -> TestResponse {
        var fields = jar.headers
        if body != nil { fields[.contentType] = "application/x-www-form-urlencoded" }
        let response = try await self.execute(
            method, path, headerFields: fields, body: body.map { .init(buffer: ByteBuffer(string: $0)) } ?? .empty)
        jar.take(response)
        return response
    }
}

/// A store that works until told to fail, then throws from every call: a store that went away.
/// (The Redis store is tested against a real server that is killed; this stands in for any
/// store in tests of the middleware's own failure handling.)
final class FailingStore: SessionStore {
    let inner = MemorySessionStore()
    let failing = Atomic<Bool>(false)

    struct Down: Error {}

    private func check() throws { if self.failing.load(ordering: .relaxed) { throw Down() } }

    func load(_ id: SessionID) async throws -> SessionRecord? {
        try self.check()
        return try await self.inner.load(id)
    }
    func create(_ id: SessionID, record: SessionRecord, expiresAt: Timestamp) async throws -> Bool {
        try self.check()
        return try await self.inner.create(id, record: record, expiresAt: expiresAt)
    }
    func apply(_ changes: SessionChanges, to id: SessionID, expiresAt: Timestamp) async throws -> Bool {
        try self.check()
        return try await self.inner.apply(changes, to: id, expiresAt: expiresAt)
    }
    func compareAndSwap(
        _ key: String, in id: SessionID, expected: [UInt8]?, new: [UInt8]?, expiresAt: Timestamp
    ) async throws -> SessionSwapResult {
        try self.check()
        return try await self.inner.compareAndSwap(key, in: id, expected: expected, new: new, expiresAt: expiresAt)
    }
    func rename(_ oldID: SessionID, to newID: SessionID, expiresAt: Timestamp) async throws -> Bool {
        try self.check()
        return try await self.inner.rename(oldID, to: newID, expiresAt: expiresAt)
    }
    func destroy(_ id: SessionID) async throws {
        try self.check()
        try await self.inner.destroy(id)
    }
    func bind(_ id: SessionID, toUser user: String, expiresAt: Timestamp) async throws -> Bool {
        try self.check()
        return try await self.inner.bind(id, toUser: user, expiresAt: expiresAt)
    }
    func sessions(ofUser user: String) async throws -> [SessionSummary] {
        try self.check()
        return try await self.inner.sessions(ofUser: user)
    }
    func revokeSessions(ofUser user: String) async throws -> Int {
        try self.check()
        return try await self.inner.revokeSessions(ofUser: user)
    }
}

/// Holds requests until released: for races between requests.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = self.state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    var waiting: Int { self.state.withLock { $0.waiters.count } }

    func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

var quietLogger: Logger {
    var logger = Logger(label: "strata.test.sessions")
    logger.logLevel = .critical
    return logger
}
