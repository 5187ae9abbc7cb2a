public import HTTPTypes
public import NIOCore
public import Strata

/// Where an ``HTTPCache`` keeps responses: the in-process ``MemoryCacheStore``, or a shared store
/// such as `RedisCacheStore` (StrataCacheRedis) that several instances read and purge together.
///
/// A store holds, under each primary key (``CacheKey/primary(for:)``), the variants of one URL:
/// one ``CachedResponse`` per secondary key (``CachedResponse/variantKey``). The cache makes every
/// decision (freshness, matching, validation); a store only keeps, finds and forgets. A store
/// may drop an entry at any time (eviction) but must never return one it was not given, and may
/// drop it once ``CachedResponse/storedUntil`` has passed.
///
/// A store that throws makes the cache forward the request to the origin (logged and counted as
/// a store error), never answer with an error.
public protocol CacheStore: Sendable {
    /// The variants stored under `key`, each with its body when the store keeps bodies with the
    /// metadata (a store that does not returns them without, see ``body(of:for:)``).
    func variants(for key: String) async throws -> [CachedResponse]

    /// The body of `variant`, one of those ``variants(for:)`` returned; `nil` when it is gone.
    /// The default returns the body the variant was returned with.
    func body(of variant: CachedResponse, for key: String) async throws -> ByteBuffer?

    /// Stores `response`, whose ``CachedResponse/body`` is set, under `key`, replacing the
    /// variant with the same ``CachedResponse/variantKey``.
    func store(_ response: CachedResponse, for key: String) async throws

    /// Replaces the metadata (header fields, times, expiry) of the stored variant with the same
    /// ``CachedResponse/variantKey``, keeping its body: a validation's `304` freshened it. Does
    /// nothing when the variant is gone.
    func updateMetadata(_ response: CachedResponse, for key: String) async throws

    /// Removes every variant under `key`.
    func remove(_ key: String) async throws

    /// Removes every entry tagged `tag` (`Cache-Tag`, `Surrogate-Key`); returns how many
    /// primary keys were removed.
    func removeTagged(_ tag: String) async throws -> Int

    /// Removes everything this store holds for the cache.
    func removeAll() async throws
}

extension CacheStore {
    public func body(of variant: CachedResponse, for key: String) async throws -> ByteBuffer? {
        variant.body
    }
}

/// A stored response: what the origin sent, the times the cache needs to compute its age, and
/// the request values it varies on.
public struct CachedResponse: Sendable {
    /// The status.
    public var status: HTTPResponse.Status
    /// The header fields as stored: hop-by-hop fields, `Age`, and the fields `no-cache="..."`
    /// and `private="..."` name are not kept (nor `Set-Cookie` in a shared cache).
    public var headerFields: HTTPFields
    /// The body; `nil` when a store returned the metadata alone.
    public var body: ByteBuffer?
    /// The body's length in bytes.
    public var bodyLength: Int
    /// The secondary key: the request's normalised values of the fields `Vary` names; empty
    /// when the response does not vary.
    public var variantKey: String
    /// When the request that fetched (or last validated) this response was sent.
    public var requestTime: Timestamp
    /// When its response arrived.
    public var responseTime: Timestamp
    /// The origin's `Age` when the response arrived, in seconds.
    public var ageValue: Int
    /// The tags purges can name (`Cache-Tag`, `Surrogate-Key`).
    public var tags: [String]
    /// When a store may forget it: its freshness lifetime plus the longest it may be served
    /// stale.
    public var storedUntil: Timestamp
    /// What the cache derived from the fields when it stored the response, so a hit parses
    /// nothing; a store that keeps entries outside the process loses it, and the cache derives
    /// it again.
    var freshness: Freshness?

    /// Creates a stored response.
    public init(
        status: HTTPResponse.Status, headerFields: HTTPFields, body: ByteBuffer?, bodyLength: Int, variantKey: String,
        requestTime: Timestamp, responseTime: Timestamp, ageValue: Int, tags: [String], storedUntil: Timestamp
    ) {
        self.status = status
        self.headerFields = headerFields
        self.body = body
        self.bodyLength = bodyLength
        self.variantKey = variantKey
        self.requestTime = requestTime
        self.responseTime = responseTime
        self.ageValue = ageValue
        self.tags = tags
        self.storedUntil = storedUntil
    }

    /// About how many bytes the entry takes in memory: the body, and what a stored response's
    /// fields and bookkeeping were measured to take (about 1.7 KiB for nginx's eight fields),
    /// plus the answer fields of its last hit, which the entry keeps for the hits of the same
    /// second (estimated from their layout: a 64-byte slot per field, and `Age` and
    /// `Cache-Status` with their values).
    public var approximateSize: Int {
        var size = 640 + 256 + self.bodyLength + self.variantKey.utf8.count
        for field in self.headerFields {
            size += 2 * (field.name.rawName.utf8.count + field.value.utf8.count) + 96 + 64
        }
        for tag in self.tags { size += tag.utf8.count + 48 }
        return size
    }
}

// MARK: - Encoding for stores outside the process

extension CachedResponse {
    private static let formatVersion: UInt8 = 1

    /// The metadata (everything but the body) as bytes, for a store that keeps entries outside
    /// the process; ``init(metadata:)`` reads it back.
    public func encodedMetadata() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.formatVersion)
        buffer.writeInteger(UInt16(self.status.code))
        Self.write(self.status.reasonPhrase, to: &buffer)
        buffer.writeInteger(Int64(self.bodyLength))
        Self.write(self.variantKey, to: &buffer)
        buffer.writeInteger(self.requestTime.nanosecondsSince1970)
        buffer.writeInteger(self.responseTime.nanosecondsSince1970)
        buffer.writeInteger(Int64(self.ageValue))
        buffer.writeInteger(self.storedUntil.nanosecondsSince1970)
        buffer.writeInteger(UInt32(self.tags.count))
        for tag in self.tags { Self.write(tag, to: &buffer) }
        buffer.writeInteger(UInt32(self.headerFields.count))
        for field in self.headerFields {
            Self.write(field.name.rawName, to: &buffer)
            Self.write(field.value, to: &buffer)
        }
        return buffer
    }

    /// Reads metadata written by ``encodedMetadata()``; the body is left `nil`.
    ///
    /// - Throws: ``CacheStoreError`` when the bytes are not such metadata (another version, or
    ///   damaged), which a store reports as a miss.
    public init(metadata: ByteBuffer) throws(CacheStoreError) {
        var buffer = metadata
        guard buffer.readInteger(as: UInt8.self) == Self.formatVersion, let code = buffer.readInteger(as: UInt16.self),
            (100...999).contains(code), let reason = Self.read(&buffer),
            let bodyLength = buffer.readInteger(as: Int64.self), bodyLength >= 0,
            let variantKey = Self.read(&buffer), let requestTime = buffer.readInteger(as: Int64.self),
            let responseTime = buffer.readInteger(as: Int64.self), let ageValue = buffer.readInteger(as: Int64.self),
            let storedUntil = buffer.readInteger(as: Int64.self), let tagCount = buffer.readInteger(as: UInt32.self),
            tagCount <= 10_000
        else { throw CacheStoreError(message: "stored cache metadata is damaged or of another version") }
        var tags: [String] = []
        for _ in 0..<tagCount {
            guard let tag = Self.read(&buffer) else { throw CacheStoreError(message: "stored cache tags are damaged") }
            tags.append(tag)
        }
        guard let fieldCount = buffer.readInteger(as: UInt32.self), fieldCount <= 10_000 else {
            throw CacheStoreError(message: "stored cache fields are damaged")
        }
        var fields = HTTPFields()
        for _ in 0..<fieldCount {
            guard let name = Self.read(&buffer), let value = Self.read(&buffer), let fieldName = HTTPField.Name(name)
            else { throw CacheStoreError(message: "a stored cache field is damaged") }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        self.init(
            status: HTTPResponse.Status(code: Int(code), reasonPhrase: reason), headerFields: fields, body: nil,
            bodyLength: Int(bodyLength), variantKey: variantKey,
            requestTime: Timestamp(nanosecondsSince1970: requestTime),
            responseTime: Timestamp(nanosecondsSince1970: responseTime), ageValue: Int(ageValue), tags: tags,
            storedUntil: Timestamp(nanosecondsSince1970: storedUntil))
    }

    private static func write(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
    }

    private static func read(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt32.self), length <= buffer.readableBytes else { return nil }
        return buffer.readString(length: Int(length))
    }
}

/// A store's own failure: damaged data, or a store that cannot be reached.
public struct CacheStoreError: Error, Hashable, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
