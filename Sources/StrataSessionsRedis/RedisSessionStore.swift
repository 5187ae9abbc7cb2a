import Crypto
import NIOCore
public import Strata
public import StrataRedis
public import StrataSessions

/// Sessions in Redis (or Valkey, or a Redis Cluster): what several instances of an app share.
///
/// - **Hashed at rest.** A session lives in a hash under `<prefix>:{<SHA-256 of the ID>}`: a dump
///   of Redis gives no usable session ID.
/// - **Atomic.** Creating, applying a request's changes, compare-and-swap and binding a user are
///   each one Lua script (one round trip with `EVALSHA`), which also checks that the session
///   still exists, so a request that finishes after a logout never recreates it.
/// - **Native expiry.** Every write sets the key's `PEXPIRE` to the session's expiry.
/// - **Per-user index.** A set under `<prefix>:user:{<SHA-256 of the user>}` lists the hashes of
///   the user's sessions, so revoking them needs no scan.
/// - **Cluster.** Every script touches one key, whose hash tag is the whole digest. Moving a
///   session to a new ID takes it (read and delete, atomically) from the old key and creates it
///   under the new one: two keys in two slots. If the process dies between the two, the session
///   is lost (the user signs in again); it is never duplicated or left under the old ID.
///   Updating the user index is a second command after the session's own script; an index entry
///   whose session is gone is pruned when the index is next read.
///
/// ```swift
/// let redis = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:6379"))
/// let sessions = try SessionMiddleware<BasicContext>(store: RedisSessionStore(client: redis))
/// ```
public struct RedisSessionStore: SessionStore {
    /// The client the store talks through.
    public let client: RedisClient
    /// What every key starts with.
    public let keyPrefix: String
    /// How long a user's index lives after the user's last login: more than the sessions'
    /// absolute lifetime, or revoking misses sessions older than it.
    public let userIndexLifetime: Duration
    private let clock: any WallClock

    /// Creates a store on `client`.
    ///
    /// - Parameters:
    ///   - client: A client for the standalone server or the cluster.
    ///   - keyPrefix: What every key starts with.
    ///   - userIndexLifetime: How long a user's index lives after the last login (default
    ///     7 days; keep it above ``SessionConfiguration/absoluteTimeout``).
    ///   - clock: Expiry times are turned into TTLs with this clock, so the servers' clocks do
    ///     not matter.
    public init(
        client: RedisClient, keyPrefix: String = "strata:session", userIndexLifetime: Duration = .seconds(7 * 86_400),
        clock: some WallClock = SystemWallClock()
    ) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.userIndexLifetime = userIndexLifetime
        self.clock = clock
    }

    // MARK: Keys

    /// The key of the session `id`: its digest, never the ID itself.
    public func key(for id: SessionID) -> RedisKey {
        self.key(forDigest: Self.digest(id.token))
    }

    private func key(forDigest digest: String) -> RedisKey {
        RedisKey("\(self.keyPrefix):{\(digest)}")
    }

    private func indexKey(_ user: String) -> RedisKey {
        RedisKey("\(self.keyPrefix):user:{\(Self.digest(user))}")
    }

    static func digest(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { byte in
            let hex = Array("0123456789abcdef".utf8)
            return String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
        }.joined()
    }

    /// Milliseconds until `expiresAt`, at least 1.
    private func ttl(_ expiresAt: Timestamp) -> Int {
        max(1, Int((expiresAt.nanosecondsSince1970 - self.clock.now().nanosecondsSince1970) / 1_000_000))
    }

    // MARK: SessionStore

    public func load(_ id: SessionID) async throws -> SessionRecord? {
        let fields = try await self.client.hgetAll(self.key(for: id))
        return Self.record(from: fields)
    }

    public func create(_ id: SessionID, record: SessionRecord, expiresAt: Timestamp) async throws -> Bool {
        var arguments: [any RedisArgument] = [self.ttl(expiresAt)]
        arguments += Self.fields(of: record, handle: id.handle)
        let reply = try await self.client.run(Scripts.create, keys: [self.key(for: id)], arguments: arguments)
        guard reply.int == 1 else { return false }
        if let user = record.user { try await self.index(id, user: user) }
        return true
    }

    public func apply(_ changes: SessionChanges, to id: SessionID, expiresAt: Timestamp) async throws -> Bool {
        var arguments: [any RedisArgument] = [
            self.ttl(expiresAt), Int(changes.lastSeen.nanosecondsSince1970), changes.removed.count,
        ]
        for name in changes.removed { arguments.append("v:\(name)") }
        for (name, value) in changes.set {
            arguments.append("v:\(name)")
            arguments.append(ByteBuffer(bytes: value))
        }
        return try await self.client.run(Scripts.apply, keys: [self.key(for: id)], arguments: arguments).int == 1
    }

    public func compareAndSwap(
        _ key: String, in id: SessionID, expected: [UInt8]?, new: [UInt8]?, expiresAt: Timestamp
    ) async throws -> SessionSwapResult {
        let arguments: [any RedisArgument] = [
            self.ttl(expiresAt), Int(self.clock.now().nanosecondsSince1970), "v:\(key)",
            expected == nil ? "0" : "1", ByteBuffer(bytes: expected ?? []),
            new == nil ? "0" : "1", ByteBuffer(bytes: new ?? []),
        ]
        let reply = try await self.client.run(Scripts.compareAndSwap, keys: [self.key(for: id)], arguments: arguments)
        let elements = reply.elements ?? []
        switch elements.first?.int {
        case 2: return .swapped
        case 1:
            let current = elements.count > 1 ? elements[1].bytes.map { Array($0.readableBytesView) } : nil
            return .conflict(current: current)
        default: return .gone
        }
    }

    public func rename(_ oldID: SessionID, to newID: SessionID, expiresAt: Timestamp) async throws -> Bool {
        guard var record = try await self.take(oldID) else { return false }
        record.lastSeen = self.clock.now()
        let user = record.user
        record.user = nil
        guard try await self.create(newID, record: record, expiresAt: expiresAt) else { return false }
        if let user {
            _ = try await self.bind(newID, toUser: user, expiresAt: expiresAt)
            try await self.client.send(RedisCommand("SREM", key: self.indexKey(user), Self.digest(oldID.token)))
        }
        return true
    }

    public func destroy(_ id: SessionID) async throws {
        guard let record = try await self.take(id), let user = record.user else { return }
        try await self.client.send(RedisCommand("SREM", key: self.indexKey(user), Self.digest(id.token)))
    }

    public func bind(_ id: SessionID, toUser user: String, expiresAt: Timestamp) async throws -> Bool {
        let reply = try await self.client.run(
            Scripts.bind, keys: [self.key(for: id)], arguments: [self.ttl(expiresAt), user])
        guard reply.int == 1 else { return false }
        try await self.index(id, user: user)
        return true
    }

    public func sessions(ofUser user: String) async throws -> [SessionSummary] {
        let index = self.indexKey(user)
        let members = try await self.client.send(RedisCommand("SMEMBERS", key: index)).elements ?? []
        var summaries: [SessionSummary] = []
        for digest in members.compactMap(\.string) {
            let reply = try await self.client.send(
                RedisCommand("HMGET", key: self.key(forDigest: digest), "_c", "_l", "_h"))
            let values = (reply.elements ?? []).map { $0.string.flatMap { Int64($0) } ?? nil }
            let handle = reply.elements?.last?.string
            guard values.count == 3, let created = values[0], let seen = values[1], let handle else {
                // Its session expired or went: prune the index entry.
                try await self.client.send(RedisCommand("SREM", key: index, digest))
                continue
            }
            summaries.append(
                SessionSummary(
                    handle: handle, createdAt: Timestamp(nanosecondsSince1970: created),
                    lastSeen: Timestamp(nanosecondsSince1970: seen)))
        }
        return summaries.sorted { $0.createdAt < $1.createdAt }
    }

    public func revokeSessions(ofUser user: String) async throws -> Int {
        let index = self.indexKey(user)
        let members = try await self.client.send(RedisCommand("SMEMBERS", key: index)).elements ?? []
        var revoked = 0
        for digest in members.compactMap(\.string) {
            revoked += try await self.client.delete(self.key(forDigest: digest))
        }
        try await self.client.delete(index)
        return revoked
    }

    // MARK: Helpers

    /// Reads and deletes a session in one step.
    private func take(_ id: SessionID) async throws -> SessionRecord? {
        let reply = try await self.client.run(Scripts.take, keys: [self.key(for: id)])
        var fields: [String: ByteBuffer] = [:]
        let elements = reply.elements ?? []
        var index = 0
        while index + 1 < elements.count {
            if let name = elements[index].string, let value = elements[index + 1].bytes { fields[name] = value }
            index += 2
        }
        return Self.record(from: fields)
    }

    private func index(_ id: SessionID, user: String) async throws {
        let index = self.indexKey(user)
        try await self.client.send(RedisCommand("SADD", key: index, Self.digest(id.token)))
        _ = try await self.client.expire(index, after: self.userIndexLifetime)
    }

    private static func fields(of record: SessionRecord, handle: String) -> [any RedisArgument] {
        var fields: [any RedisArgument] = [
            "_c", Int(record.createdAt.nanosecondsSince1970), "_l", Int(record.lastSeen.nanosecondsSince1970), "_h",
            handle,
        ]
        if let user = record.user {
            fields.append("_u")
            fields.append(user)
        }
        for (name, value) in record.values {
            fields.append("v:\(name)")
            fields.append(ByteBuffer(bytes: value))
        }
        return fields
    }

    private static func record(from fields: [String: ByteBuffer]) -> SessionRecord? {
        guard let created = fields["_c"].flatMap({ Int64(String(buffer: $0)) }),
            let seen = fields["_l"].flatMap({ Int64(String(buffer: $0)) })
        else { return nil }
        var values: [String: [UInt8]] = [:]
        for (name, value) in fields where name.hasPrefix("v:") {
            values[String(name.dropFirst(2))] = Array(value.readableBytesView)
        }
        return SessionRecord(
            values: values, createdAt: Timestamp(nanosecondsSince1970: created),
            lastSeen: Timestamp(nanosecondsSince1970: seen), user: fields["_u"].map { String(buffer: $0) })
    }
}

/// The store's Lua scripts: one key each, so they run on a cluster.
enum Scripts {
    /// ARGV: ttl ms, then field/value pairs. 0 if the key exists.
    static let create = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
        """)

    /// ARGV: ttl ms, last seen, n removed, n fields to remove, then field/value pairs to set.
    static let apply = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local n = tonumber(ARGV[3])
        if n > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 4, 3 + n)) end
        redis.call('HSET', KEYS[1], '_l', ARGV[2], unpack(ARGV, 4 + n))
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
        """)

    /// ARGV: ttl ms, last seen, field, expected present (0/1), expected, new present (0/1), new.
    /// {0}: gone; {1, current}: conflict; {2}: swapped.
    static let compareAndSwap = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
        local current = redis.call('HGET', KEYS[1], ARGV[3])
        local matches
        if ARGV[4] == '1' then matches = (current == ARGV[5]) else matches = (current == false) end
        if not matches then
          if current == false then return {1} end
          return {1, current}
        end
        if ARGV[6] == '1' then
          redis.call('HSET', KEYS[1], ARGV[3], ARGV[7], '_l', ARGV[2])
        else
          redis.call('HDEL', KEYS[1], ARGV[3])
          redis.call('HSET', KEYS[1], '_l', ARGV[2])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return {2}
        """)

    /// Every field and value, and the key deleted.
    static let take = RedisScript(
        """
        local all = redis.call('HGETALL', KEYS[1])
        if #all > 0 then redis.call('DEL', KEYS[1]) end
        return all
        """)

    /// ARGV: ttl ms, user.
    static let bind = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[1], '_u', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
        """)
}
