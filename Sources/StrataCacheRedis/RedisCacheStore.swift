public import NIOCore
public import Strata
public import StrataCache
public import StrataRedis

/// Cached responses in Redis (or Valkey, or a Redis Cluster), shared by every instance of an app:
/// what one instance stores, the others answer from; what one purges, is gone for all.
///
/// - **Layout.** A URL's variants live in a hash under `<prefix>:{<SHA-1 of the key>}`, one
///   field of metadata per variant; each body is a string beside it, under the same hash tag
///   (`...}:b:<SHA-1 of the variant>`), so a lookup reads the small metadata first and only
///   the chosen body. Keys are digests: a URL's length never reaches Redis's key.
/// - **Atomic writes.** Storing a variant (metadata, body, expiry) is one Lua script on one hash
///   slot, so a reader never sees metadata without its body.
/// - **Native expiry.** Bodies expire with their entry's ``CachedResponse/storedUntil``; the
///   hash lives as long as its longest variant.
/// - **Tags.** A set under `<prefix>:tag:{<tag>}` lists the digests of the URLs with that tag;
///   purging it removes them in every instance's view at once.
/// - **Bounded.** Bodies above `maximumBodySize` and variants past `maximumVariants` per URL
///   are not stored.
///
/// Any Redis failure throws, and the cache then asks the origin (logged and counted): a Redis
/// that went away costs the cache, never the answers.
///
/// ```swift
/// let redis = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:6379"))
/// let cache = try HTTPCache(store: RedisCacheStore(client: redis))
/// ```
public struct RedisCacheStore: CacheStore {
    /// The client the store talks through.
    public let client: RedisClient
    /// What every key starts with.
    public let keyPrefix: String
    /// The largest body stored.
    public let maximumBodySize: Int
    /// The most variants stored per URL.
    public let maximumVariants: Int
    private let clock: any WallClock

    /// Creates a store on `client`.
    ///
    /// - Parameters:
    ///   - client: A client for a standalone server or a cluster.
    ///   - keyPrefix: What every key starts with.
    ///   - maximumBodySize: The largest body stored (default 8 MiB).
    ///   - maximumVariants: The most variants per URL (default 32).
    ///   - clock: Turns ``CachedResponse/storedUntil`` into Redis TTLs, so the servers' clocks
    ///     do not matter.
    public init(
        client: RedisClient, keyPrefix: String = "strata:cache", maximumBodySize: Int = 8 << 20,
        maximumVariants: Int = 32, clock: some WallClock = SystemWallClock()
    ) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.maximumBodySize = maximumBodySize
        self.maximumVariants = maximumVariants
        self.clock = clock
    }

    // MARK: Keys

    private func digest(_ text: String) -> String {
        SHA1.hexDigest(Array(text.utf8))
    }

    private func hashKey(digest: String) -> RedisKey {
        RedisKey("\(self.keyPrefix):{\(digest)}")
    }

    private func bodyKey(digest: String, variant: String) -> RedisKey {
        RedisKey("\(self.keyPrefix):{\(digest)}:b:\(variant)")
    }

    private func tagKey(_ tag: String) -> RedisKey {
        RedisKey("\(self.keyPrefix):tag:{\(tag)}")
    }

    /// Milliseconds until `timestamp`, at least 1.
    private func ttl(_ timestamp: Timestamp) -> Int {
        max(1, Int((timestamp.nanosecondsSince1970 - self.clock.now().nanosecondsSince1970) / 1_000_000))
    }

    // MARK: CacheStore

    public func variants(for key: String) async throws -> [CachedResponse] {
        let fields = try await self.client.hgetAll(self.hashKey(digest: self.digest(key)))
        let now = self.clock.now()
        var variants: [CachedResponse] = []
        for (name, value) in fields where name.hasPrefix("v:") {
            // A damaged or foreign entry is a miss, not a failure.
            guard let variant = try? CachedResponse(metadata: value), variant.storedUntil > now else { continue }
            variants.append(variant)
        }
        return variants
    }

    public func body(of variant: CachedResponse, for key: String) async throws -> ByteBuffer? {
        try await self.client.get(self.bodyKey(digest: self.digest(key), variant: self.digest(variant.variantKey)))
    }

    public func store(_ response: CachedResponse, for key: String) async throws {
        guard let body = response.body, body.readableBytes <= self.maximumBodySize else { return }
        let digest = self.digest(key)
        let variant = self.digest(response.variantKey)
        let ttl = self.ttl(response.storedUntil)
        _ = try await self.client.run(
            Scripts.store, keys: [self.hashKey(digest: digest), self.bodyKey(digest: digest, variant: variant)],
            arguments: ["v:\(variant)", response.encodedMetadata(), body, ttl, self.maximumVariants])
        for tag in response.tags {
            _ = try await self.client.run(Scripts.tag, keys: [self.tagKey(tag)], arguments: [digest, ttl])
        }
    }

    public func updateMetadata(_ response: CachedResponse, for key: String) async throws {
        let digest = self.digest(key)
        let variant = self.digest(response.variantKey)
        _ = try await self.client.run(
            Scripts.update, keys: [self.hashKey(digest: digest), self.bodyKey(digest: digest, variant: variant)],
            arguments: ["v:\(variant)", response.encodedMetadata(), self.ttl(response.storedUntil)])
    }

    public func remove(_ key: String) async throws {
        try await self.remove(digest: self.digest(key))
    }

    private func remove(digest: String) async throws {
        let hash = self.hashKey(digest: digest)
        let fields = try await self.client.hgetAll(hash)
        var keys = [hash]
        for name in fields.keys where name.hasPrefix("v:") {
            keys.append(self.bodyKey(digest: digest, variant: String(name.dropFirst(2))))
        }
        // One hash tag: one slot, one command, even on a cluster.
        _ = try await self.client.delete(keys)
    }

    public func removeTagged(_ tag: String) async throws -> Int {
        let key = self.tagKey(tag)
        let members = try await self.client.send(RedisCommand("SMEMBERS", key: key))
        let digests = (members.elements ?? []).compactMap(\.string)
        for digest in digests { try await self.remove(digest: digest) }
        _ = try await self.client.delete(key)
        return digests.count
    }

    public func removeAll() async throws {
        for try await key in self.client.scan(match: "\(self.keyPrefix):*") {
            _ = try await self.client.delete(RedisKey(key))
        }
    }

    enum Scripts {
        /// KEYS: hash, body. ARGV: field, metadata, body, ttl ms, most variants.
        static let store = RedisScript(
            """
            if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
              return 0
            end
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
            local current = redis.call('PTTL', KEYS[1])
            if current < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
            return 1
            """)

        /// KEYS: hash, body. ARGV: field, metadata, ttl ms. Only while the body is there.
        static let update = RedisScript(
            """
            if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
            local current = redis.call('PTTL', KEYS[1])
            if current < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
            return 1
            """)

        /// KEYS: tag set. ARGV: digest, ttl ms. The set lives as long as its longest member.
        static let tag = RedisScript(
            """
            redis.call('SADD', KEYS[1], ARGV[1])
            local current = redis.call('PTTL', KEYS[1])
            if current < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
            return 1
            """)
    }
}
