import CoreMetrics
import HTTPTypes
import Logging
import Strata
import Synchronization

/// One request's view of its session, loaded from the store on first use and committed by
/// ``SessionMiddleware`` after the handler.
///
/// Reach it through the context: `try context.session`. Nothing touches the store until a
/// value is read or written, so a request that never uses the session costs no store call and
/// sets no cookie. After the handler, only what this request changed is sent to the store
/// (keys set and removed, applied atomically), so parallel requests on one session do not
/// overwrite each other. An unchanged session is not written.
///
/// ```swift
/// router.post("/api/count") { request, context in
///     let session = try context.session
///     let count = try await session.update(Counter.self) { $0 = ($0 ?? 0) + 1 } ?? 0
///     return ServerResponse(status: .ok, body: .init(string: "{\"count\": \(count)}"))
/// }
/// ```
public actor Session {
    let engine: SessionEngine
    /// The request's header fields: the cookie is parsed on first use only.
    private let requestFields: HTTPFields
    /// The ID the request's cookie carried, if well formed.
    private var presented: SessionID?
    /// Set on first use, read without a hop by the middleware: an untouched session costs
    /// no commit.
    nonisolated let touched = Atomic<Bool>(false)
    private var phase = Phase.unloaded
    /// A load is under way; other calls of the same request wait for it.
    private var loading = false
    private var loadWaiters: [CheckedContinuation<Void, Never>] = []
    /// The stored session's ID, or the ID a new session will get.
    private var id: SessionID?
    /// Whether the session under ``id`` exists in the store.
    private var stored = false
    private var record: SessionRecord?
    private var changes: SessionChanges
    /// What the response must say about the cookie.
    private(set) var cookie = CookieAction.none
    /// A value was read or the session loaded: the response varies on `Cookie`.
    private(set) var wasRead = false
    /// A value was set, removed or the session regenerated or destroyed.
    private var wasChanged = false

    enum Phase {
        case unloaded
        case loaded
        /// The store failed and the configuration fails open: anonymous, nothing saved.
        case detached
    }

    enum CookieAction: Equatable {
        case none
        case set(SessionID, maxAge: Int)
        /// The whole session, sealed into the cookie (``SessionSealer``).
        case sealed(String, maxAge: Int)
        case clear
    }

    init(engine: SessionEngine, requestFields: HTTPFields) {
        self.engine = engine
        self.requestFields = requestFields
        self.changes = SessionChanges(lastSeen: engine.clock.now())
    }

    // MARK: Values

    /// The value stored under `key`, or `nil`.
    ///
    /// A stored value that no longer decodes as `Key.Value` (the type changed in a new
    /// release) reads as `nil` and is logged, rather than failing the request.
    ///
    /// - Throws: ``SessionStoreUnavailableError`` when the store fails (unless the
    ///   configuration fails open).
    public func value<Key: SessionKey>(for key: Key.Type) async throws -> Key.Value? {
        try await self.load()
        guard let bytes = self.record?.values[Key.name] else { return nil }
        do {
            return try self.engine.codec.decode(Key.Value.self, from: bytes)
        } catch {
            self.engine.logger.warning(
                "a session value does not decode; read as absent", metadata: ["key": "\(Key.name)"])
            return nil
        }
    }

    /// Sets the value under `key`; saved after the handler with the request's other changes.
    public func set<Key: SessionKey>(_ key: Key.Type, to value: Key.Value) throws {
        self.markTouched()
        let bytes = try self.engine.codec.encode(value)
        self.changes.removed.remove(Key.name)
        self.changes.set[Key.name] = bytes
        self.record?.values[Key.name] = bytes
        self.wasChanged = true
    }

    /// Removes the value under `key`.
    public func remove<Key: SessionKey>(_ key: Key.Type) {
        self.markTouched()
        self.changes.set[Key.name] = nil
        self.changes.removed.insert(Key.name)
        self.record?.values[Key.name] = nil
        self.wasChanged = true
    }

    /// Changes the value under `key` atomically in the store: `body` sees the stored value and
    /// is run again if another request changed it meanwhile. For counters and other
    /// read-modify-write values that parallel requests share.
    ///
    /// - Returns: The value stored.
    /// - Throws: ``SessionError`` (`tooMuchContention`, `sessionGone`) or
    ///   ``SessionStoreUnavailableError``.
    @discardableResult
    public func update<Key: SessionKey>(
        _ key: Key.Type, _ body: (inout Key.Value?) throws -> Void
    ) async throws -> Key.Value? {
        try await self.load()
        if self.phase == .detached {
            var value = try await self.value(for: key)
            try body(&value)
            return value
        }
        if self.engine.sealer != nil {
            // The session lives in this request's cookie: nothing to swap with.
            var value = try await self.value(for: key)
            try body(&value)
            if let value { try self.set(key, to: value) } else { self.remove(key) }
            return value
        }
        // The value must live in the store before it can be swapped there.
        if !self.stored { try await self.persistNew() }
        guard let id = self.id else { throw SessionError(code: .sessionGone, message: "the session has no ID") }
        var expected = self.record?.values[Key.name]
        if self.changes.set[Key.name] != nil || self.changes.removed.contains(Key.name) {
            // A local write not yet saved: it is superseded by the atomic update.
            self.changes.set[Key.name] = nil
            self.changes.removed.remove(Key.name)
        }
        // Requests of this process on one value take turns; the compare-and-swap then only
        // loses to other processes sharing the store.
        let turn = await self.engine.updateTurns.acquire("\(id.token) \(Key.name)")
        defer { turn.release() }
        for _ in 0..<self.engine.configuration.maxUpdateAttempts {
            var value = expected.flatMap { try? self.engine.codec.decode(Key.Value.self, from: $0) }
            try body(&value)
            let new = try value.map { try self.engine.codec.encode($0) }
            let result = try await self.storeCall {
                try await self.engine.store.compareAndSwap(
                    Key.name, in: id, expected: expected, new: new, expiresAt: self.expiry())
            }
            switch result {
            case .swapped:
                self.record?.values[Key.name] = new
                return value
            case .conflict(let current):
                expected = current
            case .gone:
                self.sessionVanished()
                throw SessionError(code: .sessionGone, message: "the session ended during the update")
            }
        }
        throw SessionError(
            code: .tooMuchContention,
            message: "\(Key.name) changed under \(self.engine.configuration.maxUpdateAttempts) attempts")
    }

    /// Sets an encoded value under a name chosen at run time (for tests; apps use the typed
    /// ``set(_:to:)``).
    func set(named name: String, bytes: [UInt8]) {
        self.markTouched()
        self.changes.removed.remove(name)
        self.changes.set[name] = bytes
        self.record?.values[name] = bytes
        self.wasChanged = true
    }

    /// The names of the values the session holds (for tests).
    func storedNames() async throws -> [String] {
        try await self.load()
        return Array(self.record?.values.keys ?? [:].keys)
    }

    // MARK: Flash

    /// Stores a message to show once, on a later request (``takeFlash()``).
    public func flash(_ message: String) throws {
        try self.set(FlashKey.self, to: message)
    }

    /// The flash message, removed as it is read.
    public func takeFlash() async throws -> String? {
        guard let message = try await self.value(for: FlashKey.self) else { return nil }
        self.remove(FlashKey.self)
        return message
    }

    // MARK: Identity

    /// The user this session is bound to (``authenticate(user:)``), if any.
    public var user: String? {
        get async throws {
            try await self.load()
            return self.record?.user
        }
    }

    /// Whether the session exists in the store (it did before this request, or was saved
    /// during it).
    public var exists: Bool {
        get async throws {
            try await self.load()
            return self.stored
        }
    }

    /// A new ID for the same session: its data and its creation time are kept (so the
    /// absolute lifetime is not extended), the old ID stops working at once. Call it whenever
    /// the privilege level changes, above all at login (``authenticate(user:)`` does).
    public func regenerate() async throws {
        try await self.load()
        guard self.phase == .loaded else { return }
        if self.engine.sealer != nil {
            // A sealed cookie has no ID to fix: sealing it again (a new nonce) is the new value.
            self.wasChanged = true
            self.engine.metrics.regenerated.increment()
            return
        }
        let newID = SessionID()
        if self.stored, let oldID = self.id {
            let moved = try await self.storeCall {
                try await self.engine.store.rename(oldID, to: newID, expiresAt: self.expiry())
            }
            if !moved {
                // Another request regenerated or destroyed it first: this one starts afresh
                // rather than reviving the old session or clearing the other's cookie.
                self.engine.logger.debug("the session was gone when regenerating; starting a new one")
                self.sessionVanished()
            }
            self.stored = moved
        }
        self.id = newID
        self.wasChanged = true
        self.engine.metrics.regenerated.increment()
        if self.stored { self.cookie = .set(newID, maxAge: self.maxAge()) }
    }

    /// Binds the session to `user` and gives it a new ID (login). The user's other sessions
    /// are listed by ``sessionsOfUser()`` and ended by ``revokeAllSessions()``.
    public func authenticate(user: String) async throws {
        try await self.regenerate()
        guard self.phase == .loaded else { return }
        if !self.stored { try await self.persistNew() }
        if self.engine.sealer != nil {
            self.record?.user = user
            self.wasChanged = true
            return
        }
        guard let id = self.id else { return }
        let bound = try await self.storeCall {
            try await self.engine.store.bind(id, toUser: user, expiresAt: self.expiry())
        }
        guard bound else {
            self.sessionVanished()
            throw SessionError(code: .sessionGone, message: "the session ended during login")
        }
        self.record?.user = user
    }

    /// Ends the session: deleted from the store now, the cookie cleared. Values set later in
    /// the same request start a new session.
    public func destroy() async throws {
        try await self.load()
        guard self.phase == .loaded else { return }
        if self.stored, let id = self.id {
            try await self.storeCall { try await self.engine.store.destroy(id) }
        }
        self.startOver()
        self.cookie = .clear
        self.wasChanged = true
        self.engine.metrics.destroyed.increment()
    }

    /// The live sessions of this session's user (empty when logged out).
    public func sessionsOfUser() async throws -> [SessionSummary] {
        try self.requireServerStore("list a user's sessions")
        guard let user = try await self.user else { return [] }
        return try await self.storeCall { try await self.engine.store.sessions(ofUser: user) }
    }

    /// Ends every session of this session's user, this one included ("log out everywhere").
    ///
    /// - Returns: How many sessions were ended.
    @discardableResult
    public func revokeAllSessions() async throws -> Int {
        try self.requireServerStore("revoke sessions")
        guard let user = try await self.user else { return 0 }
        let count = try await self.storeCall { try await self.engine.store.revokeSessions(ofUser: user) }
        self.startOver()
        self.cookie = .clear
        self.wasChanged = true
        return count
    }

    /// This session's non-secret handle, to mark it in a list of ``SessionSummary``.
    public var handle: String? { self.stored ? self.id?.handle : nil }

    // MARK: Loading and committing

    /// Loads the session once; concurrent callers share the one load.
    private func load() async throws {
        guard self.phase == .unloaded else { return }
        self.markTouched()
        self.wasRead = true
        if let sealer = self.engine.sealer {
            self.openSealed(with: sealer)
            return
        }
        if !self.loading { self.presented = self.engine.presentedID(in: self.requestFields) }
        guard let presented = self.presented else {
            self.phase = .loaded
            return
        }
        if self.loading {
            // Another call of this request is loading it: wait for that load.
            await withCheckedContinuation { self.loadWaiters.append($0) }
            if self.phase == .unloaded {
                throw SessionStoreUnavailableError(reason: "the session store failed to load the session")
            }
            return
        }
        self.loading = true
        defer {
            self.loading = false
            let waiters = self.loadWaiters
            self.loadWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        let record: SessionRecord?
        do {
            record = try await self.engine.store.load(presented)
        } catch {
            guard self.phase == .unloaded else { return }
            try self.storeFailed(error)
            return
        }
        guard self.phase == .unloaded else { return }
        self.phase = .loaded
        guard var record else {
            self.engine.rejected("unknown")
            return
        }
        let now = self.engine.clock.now()
        let configuration = self.engine.configuration
        if now >= record.lastSeen + configuration.idleTimeout || now >= record.createdAt + configuration.absoluteTimeout
        {
            self.engine.rejected("expired")
            let engine = self.engine
            // Best effort: the store's own expiry removes it anyway.
            try? await engine.store.destroy(presented)
            return
        }
        // Values written before the load are newer than the stored ones.
        self.changes.apply(to: &record.values)
        self.record = record
        self.id = presented
        self.stored = true
    }

    /// Reads the session a sealed cookie carries.
    private func openSealed(with sealer: any SessionSealer) {
        self.phase = .loaded
        let name = self.engine.configuration.cookieName
        let values = self.requestFields.cookies.pairs.filter { $0.name == name && !$0.value.isEmpty }.map(\.value)
        guard !values.isEmpty else { return }
        let now = self.engine.clock.now()
        guard var record = values.lazy.compactMap({ sealer.open($0, cookieName: name, now: now) }).first else {
            self.engine.rejected("tampered")
            return
        }
        let configuration = self.engine.configuration
        if now >= record.lastSeen + configuration.idleTimeout || now >= record.createdAt + configuration.absoluteTimeout
        {
            self.engine.rejected("expired")
            return
        }
        self.changes.apply(to: &record.values)
        self.record = record
        self.stored = true
    }

    private func requireServerStore(_ what: String) throws {
        guard self.engine.sealer == nil else {
            throw SessionError(
                code: .unsupportedByCookieStore,
                message: "a session kept in a cookie cannot \(what): use a server store")
        }
    }

    /// Saves a session that exists only in this request, with the changes so far.
    private func persistNew() async throws {
        let now = self.engine.clock.now()
        var record = self.record ?? SessionRecord(createdAt: now, lastSeen: now)
        self.changes.apply(to: &record.values)
        record.lastSeen = now
        if self.engine.sealer != nil {
            // Sealed into the cookie at commit.
            self.record = record
            self.stored = true
            self.changes = SessionChanges(lastSeen: now)
            self.wasChanged = true
            self.engine.metrics.created.increment()
            return
        }
        let id = self.id ?? SessionID()
        let expiresAt = record.createdAt + self.engine.configuration.absoluteTimeout
        let idleEnd = now + self.engine.configuration.idleTimeout
        let created = try await self.storeCall {
            try await self.engine.store.create(id, record: record, expiresAt: min(expiresAt, idleEnd))
        }
        // 256 random bits do not collide; a store that says otherwise is refused.
        guard created else { throw SessionError(code: .sessionGone, message: "the store refused a new session ID") }
        self.id = id
        self.record = record
        self.stored = true
        self.changes = SessionChanges(lastSeen: now)
        self.cookie = .set(id, maxAge: self.maxAge())
        self.engine.metrics.created.increment()
    }

    /// Called by the middleware after the handler: saves what changed.
    func commit() async throws {
        guard self.phase != .detached, self.wasRead || self.wasChanged else { return }
        // Values set without a read: the stored session (if the cookie names one) takes them.
        try await self.load()
        guard self.phase == .loaded else { return }
        let now = self.engine.clock.now()
        if let sealer = self.engine.sealer {
            try await self.seal(with: sealer, now: now)
            return
        }
        if !self.stored {
            if !self.changes.isEmpty { try await self.persistNew() }
            return
        }
        guard let id = self.id, let record = self.record else { return }
        let touchDue = now - record.lastSeen >= self.engine.configuration.effectiveTouchInterval
        guard !self.changes.isEmpty || touchDue else { return }
        var changes = self.changes
        changes.lastSeen = now
        let applied = try await self.storeCall {
            try await self.engine.store.apply(changes, to: id, expiresAt: self.expiry())
        }
        if applied {
            if !changes.isEmpty { self.engine.metrics.written.increment() }
        } else {
            // Destroyed or regenerated by another request meanwhile: never brought back.
            self.engine.logger.debug("the session ended before this request's changes were saved; dropped")
            self.engine.rejected("gone")
        }
    }

    /// Seals the session into the cookie when it changed or its idle expiry must move.
    private func seal(with sealer: any SessionSealer, now: Timestamp) async throws {
        if !self.stored {
            guard !self.changes.isEmpty else { return }
            try await self.persistNew()
        }
        guard var record = self.record else { return }
        let touchDue = now - record.lastSeen >= self.engine.configuration.effectiveTouchInterval
        guard self.wasChanged || !self.changes.isEmpty || touchDue else { return }
        self.changes.apply(to: &record.values)
        record.lastSeen = now
        let name = self.engine.configuration.cookieName
        let value = try sealer.seal(record, cookieName: name, expiresAt: self.expiry())
        let maxAge = self.maxAge()
        // Browsers drop a cookie whose name, value and attributes pass 4,096 bytes: say so now.
        let size = try self.engine.configuration.cookie(value: value, maxAge: maxAge).setCookieValue.utf8.count
        guard size <= 4096 else {
            throw SessionError(
                code: .cookieTooLarge,
                message: "the sealed session needs a \(size)-byte Set-Cookie; browsers keep at most 4096")
        }
        self.cookie = .sealed(value, maxAge: maxAge)
        self.engine.metrics.written.increment()
    }

    private func markTouched() {
        if !self.touched.load(ordering: .relaxed) { self.touched.store(true, ordering: .relaxed) }
    }

    /// Runs a store operation; a failure becomes ``SessionStoreUnavailableError``, logged and
    /// counted.
    private func storeCall<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as SessionStoreUnavailableError {
            throw error
        } catch let error as SessionError {
            throw error
        } catch {
            self.engine.metrics.storeErrors.increment()
            self.engine.logger.error("session store unavailable", metadata: ["error": "\(error)"])
            throw SessionStoreUnavailableError(reason: "\(error)")
        }
    }

    private func storeFailed(_ error: any Error) throws {
        self.engine.metrics.storeErrors.increment()
        if self.engine.configuration.failOpen {
            self.engine.logger.warning(
                "session store unavailable; serving the request without a session", metadata: ["error": "\(error)"])
            self.phase = .detached
            return
        }
        self.engine.logger.error("session store unavailable", metadata: ["error": "\(error)"])
        throw SessionStoreUnavailableError(reason: "\(error)")
    }

    /// The store lost the session under this request: it goes on as a new, empty one.
    private func sessionVanished() {
        self.startOver()
    }

    private func startOver() {
        self.id = nil
        self.stored = false
        self.record = nil
        self.changes = SessionChanges(lastSeen: self.engine.clock.now())
        self.phase = .loaded
    }

    /// When the stored session expires: the idle timeout from now, capped by its lifetime.
    private func expiry() -> Timestamp {
        let now = self.engine.clock.now()
        let idle = now + self.engine.configuration.idleTimeout
        guard let record = self.record else { return idle }
        return min(idle, record.createdAt + self.engine.configuration.absoluteTimeout)
    }

    /// The cookie's `Max-Age`: what is left of the absolute lifetime, in whole seconds.
    private func maxAge() -> Int {
        let now = self.engine.clock.now()
        let end = (self.record?.createdAt ?? now) + self.engine.configuration.absoluteTimeout
        return max(1, Int((end - now).components.seconds))
    }
}
