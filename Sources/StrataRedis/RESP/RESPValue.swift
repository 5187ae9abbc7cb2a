public import NIOCore

/// A reply from a Redis server: every RESP2 and RESP3 type.
///
/// Strings are bytes (`ByteBuffer`): Redis is binary-safe, and nothing is decoded unless asked
/// (``string``). RESP2's null bulk string and null array both read as ``null``.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`: a short status string.
    case simpleString(ByteBuffer)
    /// `$5 hello`: a binary-safe string.
    case bulkString(ByteBuffer)
    /// `-ERR ...` or `!21 ...`: an error reply. A command whose whole reply is an error throws
    /// ``RedisServerError``; an error inside an aggregate (`EXEC`'s results) stays a value.
    case error(ByteBuffer)
    /// `:42`.
    case integer(Int64)
    /// `,3.14`, `,inf`, `,nan` (RESP3).
    case double(Double)
    /// `#t` / `#f` (RESP3).
    case boolean(Bool)
    /// `(3492890328409238509324850943850943825024385` (RESP3), as its decimal digits.
    case bigNumber(ByteBuffer)
    /// `=15 txt:Some string` (RESP3): the text, without its 3-letter format.
    case verbatimString(ByteBuffer)
    /// `_`, `$-1` or `*-1`.
    case null
    /// `*2 ...`.
    case array([RESPValue])
    /// `~2 ...` (RESP3).
    case set([RESPValue])
    /// `%2 ...` (RESP3), in the order the server sent the pairs.
    case map([RESPMapEntry])
    /// `>3 ...` (RESP3): an out-of-band push (pub/sub messages, invalidations).
    case push([RESPValue])
}

/// A key and its value in a RESP3 map.
public struct RESPMapEntry: Sendable, Equatable {
    public var key: RESPValue
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// The bytes of a simple, bulk or verbatim string; `nil` for anything else.
    public var bytes: ByteBuffer? {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer), .verbatimString(let buffer): buffer
        default: nil
        }
    }

    /// A string reply decoded as UTF-8 (invalid sequences repaired); `nil` for non-strings.
    public var string: String? { self.bytes.map { String(buffer: $0) } }

    /// An integer reply, or a string reply that holds a decimal integer; `nil` otherwise.
    public var int: Int? {
        switch self {
        case .integer(let value): Int(exactly: value)
        case .simpleString, .bulkString:
            self.bytes.flatMap { buffer in buffer.withUnsafeReadableBytes { RESPParser.parseInteger($0) } }.flatMap {
                Int(exactly: $0)
            }
        default: nil
        }
    }

    /// The elements of an array, set or push; `nil` for anything else.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values): values
        default: nil
        }
    }

    /// Whether the reply is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The pairs of a RESP3 map, or of a RESP2 flat array of alternating keys and values
    /// (`HGETALL`, `CONFIG GET`); `nil` for anything else.
    public var pairs: [RESPMapEntry]? {
        switch self {
        case .map(let entries): return entries
        case .array(let values):
            guard values.count % 2 == 0 else { return nil }
            return stride(from: 0, to: values.count, by: 2).map { RESPMapEntry(key: values[$0], value: values[$0 + 1]) }
        default: return nil
        }
    }
}
