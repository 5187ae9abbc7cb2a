public import Strata

/// Where sessions live: in memory (``MemorySessionStore``), in Redis (`StrataSessionsRedis`),
/// or anything else that can apply a request's changes atomically.
///
/// The middleware never writes a whole session back. It sends what the request changed
/// (``SessionChanges``), and the store applies that atomically, so two parallel requests that
/// change different keys both survive. A store also keeps every session's expiry and an index
/// of the sessions bound to each user, so that ``revokeSessions(ofUser:)`` needs no scan.
///
/// Every method may throw when the store cannot be reached; the middleware then answers `503`
/// or serves the request as anonymous, as configured. A store never throws for a session that
/// is unknown or expired: that is `nil` or `false`.
public protocol SessionStore: Sendable {
    /// The session stored under `id`, or `nil` if there is none (or it expired).
    func load(_ id: SessionID) async throws -> SessionRecord?

    /// Stores a new session; `false` (and nothing stored) if `id` is taken.
    func create(_ id: SessionID, record: SessionRecord, expiresAt: Timestamp) async throws -> Bool

    /// Applies one request's changes to the session atomically and moves its expiry.
    ///
    /// - Returns: `false` when the session is gone (destroyed, regenerated or expired
    ///   meanwhile): nothing is written then, so a request that finishes after a logout
    ///   never brings the session back.
    func apply(_ changes: SessionChanges, to id: SessionID, expiresAt: Timestamp) async throws -> Bool

    /// Replaces one value if it still holds `expected` (`nil`: absent), atomically.
    ///
    /// - Returns: ``SessionSwapResult``: swapped, or the value found instead, or the session
    ///   is gone.
    func compareAndSwap(
        _ key: String, in id: SessionID, expected: [UInt8]?, new: [UInt8]?, expiresAt: Timestamp
    ) async throws -> SessionSwapResult

    /// Moves the session to `newID` (its data, creation time and user kept), deleting `oldID`,
    /// atomically.
    ///
    /// - Returns: `false` if `oldID` was gone (another request regenerated or destroyed it);
    ///   nothing is created then.
    func rename(_ oldID: SessionID, to newID: SessionID, expiresAt: Timestamp) async throws -> Bool

    /// Deletes the session (and its entry in its user's index).
    func destroy(_ id: SessionID) async throws

    /// Binds the session to `user`: records it in the session and in the user's index.
    ///
    /// - Returns: `false` if the session is gone.
    func bind(_ id: SessionID, toUser user: String, expiresAt: Timestamp) async throws -> Bool

    /// The live sessions bound to `user`, without their IDs' secrets.
    func sessions(ofUser user: String) async throws -> [SessionSummary]

    /// Deletes every session bound to `user`; how many were deleted.
    @discardableResult
    func revokeSessions(ofUser user: String) async throws -> Int
}

/// What a store keeps of one session.
public struct SessionRecord: Sendable, Hashable {
    /// The encoded values, by key name.
    public var values: [String: [UInt8]]
    /// When the session was first created: the absolute lifetime counts from here, and
    /// regenerating the ID keeps it.
    public var createdAt: Timestamp
    /// The last request that used it: the idle timeout counts from here.
    public var lastSeen: Timestamp
    /// The user it is bound to, if any (``Session/authenticate(user:)``).
    public var user: String?

    /// Creates a record.
    public init(values: [String: [UInt8]] = [:], createdAt: Timestamp, lastSeen: Timestamp, user: String? = nil) {
        self.values = values
        self.createdAt = createdAt
        self.lastSeen = lastSeen
        self.user = user
    }

    /// The bytes of the values, for memory bounds.
    var byteCount: Int {
        self.values.reduce(64 + (self.user?.utf8.count ?? 0)) { $0 + $1.key.utf8.count + $1.value.count }
    }
}

/// The changes one request made to a session: keys set and keys removed.
public struct SessionChanges: Sendable, Hashable {
    /// Values set, encoded, by key name.
    public var set: [String: [UInt8]] = [:]
    /// Keys removed.
    public var removed: Set<String> = []
    /// When the request used the session (moves the idle timeout).
    public var lastSeen: Timestamp

    /// Creates a change set.
    public init(set: [String: [UInt8]] = [:], removed: Set<String> = [], lastSeen: Timestamp) {
        self.set = set
        self.removed = removed
        self.lastSeen = lastSeen
    }

    /// No value changed (the expiry may still move).
    public var isEmpty: Bool { self.set.isEmpty && self.removed.isEmpty }

    /// Applies the changes to `values`.
    public func apply(to values: inout [String: [UInt8]]) {
        for key in self.removed { values[key] = nil }
        for (key, value) in self.set { values[key] = value }
    }
}

/// The outcome of ``SessionStore/compareAndSwap(_:in:expected:new:expiresAt:)``.
public enum SessionSwapResult: Sendable, Hashable {
    /// The new value is stored.
    case swapped
    /// Another request changed the value first; this is what it holds now.
    case conflict(current: [UInt8]?)
    /// The session is gone.
    case gone
}

/// One of a user's sessions, as ``SessionStore/sessions(ofUser:)`` lists them.
public struct SessionSummary: Sendable, Hashable {
    /// A stable, non-secret handle: a digest of the ID, never the ID itself.
    public var handle: String
    /// When it was created.
    public var createdAt: Timestamp
    /// When it was last used.
    public var lastSeen: Timestamp

    /// Creates a summary.
    public init(handle: String, createdAt: Timestamp, lastSeen: Timestamp) {
        self.handle = handle
        self.createdAt = createdAt
        self.lastSeen = lastSeen
    }
}
