import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataSessions
import StrataTesting
import Synchronization

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

var quietLogger: Logger {
    var logger = Logger(label: "strata.test.sessions")
    logger.logLevel = .critical
    return logger
}
