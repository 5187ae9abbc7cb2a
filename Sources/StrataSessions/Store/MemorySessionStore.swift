public import Strata
import Synchronization

/// Sessions in this process's memory: bounded in entries and bytes, expired on time, the least
/// recently used evicted first when full.
///
/// Every operation runs under one lock, so each is atomic. For several instances of an app,
/// use the Redis store (`StrataSessionsRedis`): sessions in memory are lost on restart and not
/// shared.
///
/// ```swift
/// let store = MemorySessionStore(maxEntries: 100_000, maxBytes: 64 << 20)
/// ```
public final class MemorySessionStore: SessionStore {
    private let state: Mutex<State>
    private let clock: any WallClock
    /// The most sessions kept.
    public let maxEntries: Int
    /// The most bytes of values (with keys and a small per-entry overhead) kept.
    public let maxBytes: Int

    private struct Entry {
        var record: SessionRecord
        var expiresAt: Timestamp
        var bytes: Int
        var newer: SessionID?
        var older: SessionID?
    }

    private struct State {
        var entries: [SessionID: Entry] = [:]
        var users: [String: Set<SessionID>] = [:]
        var bytes = 0
        /// Most and least recently used.
        var newest: SessionID?
        var oldest: SessionID?
    }

    /// Creates an empty store.
    ///
    /// - Parameters:
    ///   - maxEntries: The most sessions kept; the least recently used go first.
    ///   - maxBytes: The most bytes kept.
    ///   - clock: The time source for expiry.
    public init(maxEntries: Int = 100_000, maxBytes: Int = 64 << 20, clock: some WallClock = SystemWallClock()) {
        precondition(maxEntries > 0 && maxBytes > 0, "a memory store needs room for at least one session")
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.clock = clock
        self.state = Mutex(State())
    }

    /// How many sessions are held (expired ones included until they are next looked at).
    public var count: Int { self.state.withLock { $0.entries.count } }

    public func load(_ id: SessionID) async throws -> SessionRecord? {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard let entry = self.live(id, in: &state, now: now) else { return nil }
            Self.markUsed(id, in: &state)
            return entry.record
        }
    }

    public func create(_ id: SessionID, record: SessionRecord, expiresAt: Timestamp) async throws -> Bool {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard self.live(id, in: &state, now: now) == nil else { return false }
            self.insert(id, Entry(record: record, expiresAt: expiresAt, bytes: record.byteCount), in: &state)
            return true
        }
    }

    public func apply(_ changes: SessionChanges, to id: SessionID, expiresAt: Timestamp) async throws -> Bool {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard var entry = self.live(id, in: &state, now: now) else { return false }
            changes.apply(to: &entry.record.values)
            entry.record.lastSeen = max(entry.record.lastSeen, changes.lastSeen)
            entry.expiresAt = expiresAt
            self.replace(id, with: entry, in: &state)
            return true
        }
    }

    public func compareAndSwap(
        _ key: String, in id: SessionID, expected: [UInt8]?, new: [UInt8]?, expiresAt: Timestamp
    ) async throws -> SessionSwapResult {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard var entry = self.live(id, in: &state, now: now) else { return .gone }
            let current = entry.record.values[key]
            guard current == expected else { return .conflict(current: current) }
            entry.record.values[key] = new
            entry.record.lastSeen = max(entry.record.lastSeen, now)
            entry.expiresAt = expiresAt
            self.replace(id, with: entry, in: &state)
            return .swapped
        }
    }

    public func rename(_ oldID: SessionID, to newID: SessionID, expiresAt: Timestamp) async throws -> Bool {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard var entry = self.live(oldID, in: &state, now: now), state.entries[newID] == nil else { return false }
            self.remove(oldID, in: &state)
            entry.expiresAt = expiresAt
            entry.record.lastSeen = now
            self.insert(newID, entry, in: &state)
            return true
        }
    }

    public func destroy(_ id: SessionID) async throws {
        self.state.withLock { state in self.remove(id, in: &state) }
    }

    public func bind(_ id: SessionID, toUser user: String, expiresAt: Timestamp) async throws -> Bool {
        let now = self.clock.now()
        return self.state.withLock { state in
            guard var entry = self.live(id, in: &state, now: now) else { return false }
            entry.record.user = user
            entry.expiresAt = expiresAt
            self.replace(id, with: entry, in: &state)
            return true
        }
    }

    public func sessions(ofUser user: String) async throws -> [SessionSummary] {
        let now = self.clock.now()
        return self.state.withLock { state in
            (state.users[user] ?? []).compactMap { id in
                self.live(id, in: &state, now: now).map {
                    SessionSummary(handle: id.handle, createdAt: $0.record.createdAt, lastSeen: $0.record.lastSeen)
                }
            }.sorted { $0.createdAt < $1.createdAt }
        }
    }

    public func revokeSessions(ofUser user: String) async throws -> Int {
        self.state.withLock { state in
            let ids = state.users[user] ?? []
            for id in ids { self.remove(id, in: &state) }
            return ids.count
        }
    }

    // MARK: Bookkeeping, all under the lock

    /// The entry if it exists and has not expired; an expired one is removed.
    private func live(_ id: SessionID, in state: inout State, now: Timestamp) -> Entry? {
        guard let entry = state.entries[id] else { return nil }
        guard now < entry.expiresAt else {
            self.remove(id, in: &state)
            return nil
        }
        return entry
    }

    private func insert(_ id: SessionID, _ entry: Entry, in state: inout State) {
        var entry = entry
        entry.bytes = entry.record.byteCount
        entry.newer = nil
        entry.older = state.newest
        if let newest = state.newest { state.entries[newest]?.newer = id }
        state.newest = id
        if state.oldest == nil { state.oldest = id }
        state.entries[id] = entry
        state.bytes += entry.bytes
        if let user = entry.record.user { state.users[user, default: []].insert(id) }
        self.evict(in: &state, keeping: id)
    }

    /// Stores a changed entry, moving it to the front.
    private func replace(_ id: SessionID, with entry: Entry, in state: inout State) {
        self.remove(id, in: &state)
        self.insert(id, entry, in: &state)
    }

    private func remove(_ id: SessionID, in state: inout State) {
        guard let entry = state.entries.removeValue(forKey: id) else { return }
        state.bytes -= entry.bytes
        if let newer = entry.newer { state.entries[newer]?.older = entry.older } else { state.newest = entry.older }
        if let older = entry.older { state.entries[older]?.newer = entry.newer } else { state.oldest = entry.newer }
        if let user = entry.record.user {
            state.users[user]?.remove(id)
            if state.users[user]?.isEmpty == true { state.users[user] = nil }
        }
    }

    private static func markUsed(_ id: SessionID, in state: inout State) {
        guard state.newest != id, let entry = state.entries[id] else { return }
        if let newer = entry.newer { state.entries[newer]?.older = entry.older }
        if let older = entry.older { state.entries[older]?.newer = entry.newer } else { state.oldest = entry.newer }
        state.entries[id]?.older = state.newest
        state.entries[id]?.newer = nil
        if let newest = state.newest { state.entries[newest]?.newer = id }
        state.newest = id
    }

    /// Evicts the least recently used until within bounds (never `keeping`).
    private func evict(in state: inout State, keeping: SessionID) {
        while state.entries.count > self.maxEntries || state.bytes > self.maxBytes,
            let oldest = state.oldest, oldest != keeping
        {
            self.remove(oldest, in: &state)
        }
    }
}
