public import NIOCore

/// How long a key set with ``RedisClient/set(_:to:expiration:condition:)`` lives.
public enum RedisExpiration: Sendable, Hashable {
    /// `EX`: seconds.
    case seconds(Int)
    /// `PX`: milliseconds.
    case milliseconds(Int)
    /// `KEEPTTL`: keep the key's current time to live.
    case keepTTL
}

/// When ``RedisClient/set(_:to:expiration:condition:)`` writes.
public enum RedisSetCondition: Sendable, Hashable {
    case always
    /// `NX`: only if the key does not exist.
    case ifNotExists
    /// `XX`: only if it exists.
    case ifExists
}

/// A key's time to live, from `TTL`/`PTTL`.
public enum RedisTimeToLive: Sendable, Hashable {
    case noKey
    case noExpiry
    case expires(Duration)
}

extension RedisClient {
    /// `PING`.
    public func ping() async throws {
        try await self.send(RedisCommand("PING"))
    }

    /// `GET`: the value, or `nil` when the key does not exist.
    public func get(_ key: RedisKey) async throws -> ByteBuffer? {
        try Self.optionalBytes(try await self.send(RedisCommand("GET", key: key)), "GET")
    }

    /// `GET` decoded as UTF-8.
    public func getString(_ key: RedisKey) async throws -> String? {
        try await self.get(key).map { String(buffer: $0) }
    }

    /// `SET`, with `EX`/`PX`/`KEEPTTL` and `NX`/`XX`.
    ///
    /// - Returns: whether the value was written (`false` when `NX`/`XX` did not hold).
    @discardableResult
    public func set(
        _ key: RedisKey,
        to value: some RedisArgument,
        expiration: RedisExpiration? = nil,
        condition: RedisSetCondition = .always
    ) async throws -> Bool {
        let reply = try await self.send(Self.setCommand(key, value, expiration, condition, returnPrevious: false))
        return !reply.isNull
    }

    /// `SET ... GET`: writes (under the same options) and returns the previous value.
    public func setReturningPrevious(
        _ key: RedisKey,
        to value: some RedisArgument,
        expiration: RedisExpiration? = nil,
        condition: RedisSetCondition = .always
    ) async throws -> ByteBuffer? {
        try Self.optionalBytes(
            try await self.send(Self.setCommand(key, value, expiration, condition, returnPrevious: true)), "SET GET")
    }

    /// About how many bytes `argument` takes in a command (exact for bytes and strings).
    @inline(__always)
    static func sizeHint(_ argument: some RedisArgument) -> Int {
        switch argument {
        case let bytes as ByteBuffer: bytes.readableBytes
        case let string as String: string.utf8.count
        case let bytes as [UInt8]: bytes.count
        case let key as RedisKey: key.bytes.readableBytes
        default: 16
        }
    }

    static func setCommand(
        _ key: RedisKey, _ value: some RedisArgument, _ expiration: RedisExpiration?, _ condition: RedisSetCondition,
        returnPrevious: Bool
    ) -> RedisCommand {
        // Room for the value and its length line, and for the options.
        var command = RedisCommand("SET", key: key.bytes, reservingCapacity: Self.sizeHint(value) + 32)
        command.append(value)
        switch expiration {
        case .seconds(let seconds):
            command.append("EX")
            command.append(seconds)
        case .milliseconds(let milliseconds):
            command.append("PX")
            command.append(milliseconds)
        case .keepTTL:
            command.append("KEEPTTL")
        case nil:
            break
        }
        switch condition {
        case .always: break
        case .ifNotExists: command.append("NX")
        case .ifExists: command.append("XX")
        }
        if returnPrevious { command.append("GET") }
        return command
    }

    /// `DEL`: how many of the keys existed. In a cluster the keys must share a slot.
    @discardableResult
    public func delete(_ keys: RedisKey...) async throws -> Int {
        try await self.delete(keys)
    }

    /// `DEL` for a list of keys.
    @discardableResult
    public func delete(_ keys: [RedisKey]) async throws -> Int {
        guard let first = keys.first else { return 0 }
        var command = RedisCommand("DEL", key: first)
        for key in keys.dropFirst() { command.append(key) }
        return try Self.integer(try await self.send(command), "DEL")
    }

    /// `EXISTS`: how many of the keys exist.
    public func exists(_ keys: RedisKey...) async throws -> Int {
        guard let first = keys.first else { return 0 }
        var command = RedisCommand("EXISTS", key: first)
        for key in keys.dropFirst() { command.append(key) }
        return try Self.integer(try await self.send(command), "EXISTS")
    }

    /// `EXPIRE` (whole seconds) or `PEXPIRE` (otherwise): whether the key exists.
    @discardableResult
    public func expire(_ key: RedisKey, after duration: Duration) async throws -> Bool {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        let command =
            milliseconds % 1000 == 0
            ? RedisCommand("EXPIRE", key: key, Int(milliseconds / 1000))
            : RedisCommand("PEXPIRE", key: key, Int(milliseconds))
        return try Self.integer(try await self.send(command), "EXPIRE") == 1
    }

    /// `PTTL`: the key's remaining time to live.
    public func timeToLive(_ key: RedisKey) async throws -> RedisTimeToLive {
        switch try Self.integer(try await self.send(RedisCommand("PTTL", key: key)), "PTTL") {
        case -2: .noKey
        case -1: .noExpiry
        case let milliseconds: .expires(.milliseconds(milliseconds))
        }
    }

    /// `TTL`: whole seconds left, -1 without expiry, -2 without the key.
    public func ttl(_ key: RedisKey) async throws -> Int {
        try Self.integer(try await self.send(RedisCommand("TTL", key: key)), "TTL")
    }

    /// `INCR`: the new value.
    @discardableResult
    public func incr(_ key: RedisKey) async throws -> Int {
        try Self.integer(try await self.send(RedisCommand("INCR", key: key)), "INCR")
    }

    /// `INCRBY`: the new value.
    @discardableResult
    public func incr(_ key: RedisKey, by amount: Int) async throws -> Int {
        try Self.integer(try await self.send(RedisCommand("INCRBY", key: key, amount)), "INCRBY")
    }

    /// `HSET`: how many fields were new.
    @discardableResult
    public func hset(_ key: RedisKey, fields: [(String, any RedisArgument)]) async throws -> Int {
        var command = RedisCommand("HSET", key: key)
        for (field, value) in fields {
            command.append(field)
            value.append(to: &command)
        }
        return try Self.integer(try await self.send(command), "HSET")
    }

    /// `HSET` of one field.
    @discardableResult
    public func hset(_ key: RedisKey, field: String, to value: some RedisArgument) async throws -> Bool {
        try await self.hset(key, fields: [(field, value)]) == 1
    }

    /// `HGET`.
    public func hget(_ key: RedisKey, field: String) async throws -> ByteBuffer? {
        try Self.optionalBytes(try await self.send(RedisCommand("HGET", key: key, field)), "HGET")
    }

    /// `HGETALL`: every field and value (a RESP3 map or a RESP2 flat array, both read).
    public func hgetAll(_ key: RedisKey) async throws -> [String: ByteBuffer] {
        let reply = try await self.send(RedisCommand("HGETALL", key: key))
        guard let pairs = reply.pairs else { throw Self.unexpected(reply, "HGETALL") }
        var result: [String: ByteBuffer] = [:]
        for pair in pairs {
            guard let field = pair.key.string, let value = pair.value.bytes else {
                throw Self.unexpected(reply, "HGETALL")
            }
            result[field] = value
        }
        return result
    }

    /// `HDEL`: how many fields were removed.
    @discardableResult
    public func hdel(_ key: RedisKey, fields: String...) async throws -> Int {
        var command = RedisCommand("HDEL", key: key)
        for field in fields { command.append(field) }
        return try Self.integer(try await self.send(command), "HDEL")
    }

    /// `HINCRBY`: the field's new value.
    @discardableResult
    public func hincr(_ key: RedisKey, field: String, by amount: Int) async throws -> Int {
        try Self.integer(try await self.send(RedisCommand("HINCRBY", key: key, field, amount)), "HINCRBY")
    }

    /// `PUBLISH`: how many subscribers received the message.
    @discardableResult
    public func publish(_ message: some RedisArgument, to channel: String) async throws -> Int {
        var command = RedisCommand("PUBLISH")
        command.append(channel)
        command.append(message)
        command.route(by: ByteBuffer(string: channel))
        return try Self.integer(try await self.send(command), "PUBLISH")
    }

    // MARK: Reply checks

    static func integer(_ reply: RESPValue, _ command: String) throws -> Int {
        guard case .integer(let value) = reply, let int = Int(exactly: value) else {
            throw Self.unexpected(reply, command)
        }
        return int
    }

    static func optionalBytes(_ reply: RESPValue, _ command: String) throws -> ByteBuffer? {
        if reply.isNull { return nil }
        guard let bytes = reply.bytes else { throw Self.unexpected(reply, command) }
        return bytes
    }

    static func unexpected(_ reply: RESPValue, _ command: String) -> RedisClientError {
        RedisClientError(.unexpectedReply, mayHaveRun: true, message: "\(command) answered a \(reply.typeName)")
    }
}

extension RESPValue {
    /// The RESP type's name, for error messages (never the value).
    var typeName: String {
        switch self {
        case .simpleString: "simple string"
        case .bulkString: "bulk string"
        case .error: "error"
        case .integer: "integer"
        case .double: "double"
        case .boolean: "boolean"
        case .bigNumber: "big number"
        case .verbatimString: "verbatim string"
        case .null: "null"
        case .array: "array"
        case .set: "set"
        case .map: "map"
        case .push: "push"
        }
    }
}
