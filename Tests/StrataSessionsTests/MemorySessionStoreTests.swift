import Strata
import StrataSessions
import StrataTestSupport
import StrataTesting
import Testing

/// The memory store's own guarantees: bounds, LRU eviction, expiry, the user index.
@Suite struct MemorySessionStoreTests {
    static func record(_ clock: ManualClock, bytes: Int = 0, user: String? = nil) -> SessionRecord {
        SessionRecord(
            values: bytes > 0 ? ["v": [UInt8](repeating: 1, count: bytes)] : [:], createdAt: clock.now(),
            lastSeen: clock.now(), user: user)
    }

    @Test func theLeastRecentlyUsedSessionIsEvictedFirst() async throws {
        let clock = ManualClock()
        let store = MemorySessionStore(maxEntries: 3, clock: clock)
        let ids = (0..<4).map { _ in SessionID() }
        let later = clock.now() + .seconds(3600)
        for id in ids.prefix(3) { #expect(try await store.create(id, record: Self.record(clock), expiresAt: later)) }
        _ = try await store.load(ids[0])  // now the most recently used
        #expect(try await store.create(ids[3], record: Self.record(clock), expiresAt: later))
        #expect(store.count == 3)
        #expect(try await store.load(ids[1]) == nil, "the least recently used went")
        #expect(try await store.load(ids[0]) != nil)
        #expect(try await store.load(ids[2]) != nil)
        #expect(try await store.load(ids[3]) != nil)
    }

    @Test func bytesAreBoundedToo() async throws {
        let clock = ManualClock()
        let store = MemorySessionStore(maxEntries: 1000, maxBytes: 10_000, clock: clock)
        let later = clock.now() + .seconds(3600)
        var ids: [SessionID] = []
        for _ in 0..<10 {
            let id = SessionID()
            ids.append(id)
            _ = try await store.create(id, record: Self.record(clock, bytes: 2000), expiresAt: later)
        }
        #expect(store.count <= 5)
        #expect(try await store.load(ids[9]) != nil, "the newest stays")
        #expect(try await store.load(ids[0]) == nil)
        // A change that grows a session also evicts others, never the session changed.
        let grown = SessionChanges(set: ["big": [UInt8](repeating: 2, count: 6000)], lastSeen: clock.now())
        #expect(try await store.apply(grown, to: ids[9], expiresAt: later))
        #expect(try await store.load(ids[9])?.values["big"]?.count == 6000)
    }

    @Test func expiredSessionsAreGoneForEveryOperation() async throws {
        let clock = ManualClock()
        let store = MemorySessionStore(clock: clock)
        let id = SessionID()
        _ = try await store.create(id, record: Self.record(clock, user: "ada"), expiresAt: clock.now() + .seconds(60))
        clock.advance(by: .seconds(60))
        #expect(try await store.load(id) == nil)
        #expect(try await store.apply(SessionChanges(lastSeen: clock.now()), to: id, expiresAt: clock.now()) == false)
        #expect(try await store.compareAndSwap("k", in: id, expected: nil, new: [1], expiresAt: clock.now()) == .gone)
        #expect(try await store.rename(id, to: SessionID(), expiresAt: clock.now()) == false)
        #expect(try await store.sessions(ofUser: "ada").isEmpty)
        #expect(store.count == 0)
    }

    @Test func compareAndSwapSwapsOnlyFromTheExpectedValue() async throws {
        let clock = ManualClock()
        let store = MemorySessionStore(clock: clock)
        let id = SessionID()
        let later = clock.now() + .seconds(60)
        _ = try await store.create(id, record: Self.record(clock), expiresAt: later)
        #expect(try await store.compareAndSwap("n", in: id, expected: nil, new: [1], expiresAt: later) == .swapped)
        #expect(
            try await store.compareAndSwap("n", in: id, expected: nil, new: [2], expiresAt: later)
                == .conflict(current: [1]))
        #expect(try await store.compareAndSwap("n", in: id, expected: [1], new: nil, expiresAt: later) == .swapped)
        #expect(try await store.load(id)?.values["n"] == nil)
    }

    @Test func renameKeepsTheDataAndTheUserIndexFollows() async throws {
        let clock = ManualClock()
        let store = MemorySessionStore(clock: clock)
        let later = clock.now() + .seconds(60)
        let old = SessionID()
        let new = SessionID()
        _ = try await store.create(old, record: Self.record(clock, bytes: 10), expiresAt: later)
        #expect(try await store.bind(old, toUser: "ada", expiresAt: later))
        #expect(try await store.rename(old, to: new, expiresAt: later))
        #expect(try await store.load(old) == nil)
        #expect(try await store.load(new)?.values["v"]?.count == 10)
        #expect(try await store.sessions(ofUser: "ada").map(\.handle) == [new.handle])
        #expect(try await store.rename(old, to: SessionID(), expiresAt: later) == false, "the old ID is dead")
        #expect(try await store.revokeSessions(ofUser: "ada") == 1)
        #expect(try await store.load(new) == nil)
    }

    @Test func idsAreWellFormedAndTheParserRefusesAnythingElse() {
        let ids = Set((0..<1000).map { _ in SessionID().token })
        #expect(ids.count == 1000)
        for token in ids.prefix(20) {
            #expect(token.count == 43)
            #expect(SessionID(token: token)?.token == token)
        }
        let valid = SessionID().token
        #expect(SessionID(token: valid + "A") == nil)
        #expect(SessionID(token: String(valid.dropLast()) + "=") == nil)
        #expect(SessionID(token: String(valid.dropLast()) + "B") == nil, "the last character's low bits must be zero")
        #expect(SessionID().description.hasPrefix("session "), "an ID never prints itself")
        #expect(!SessionID().description.contains(valid))
    }
}
