public import NIOCore

/// Bounds on what one reply may hold, so a broken or hostile server cannot make the client
/// allocate without limit.
public struct RESPParserLimits: Sendable, Hashable {
    /// The largest bulk string, verbatim string or blob error, in bytes. Redis' own
    /// `proto-max-bulk-len` default: 512 MiB.
    public var maxBulkLength: Int = 512 * 1024 * 1024
    /// The most elements one array, set, map or push may declare (512 Mi, as Redis' own limit
    /// on a request). Elements are stored as they arrive, never reserved up front.
    public var maxAggregateLength: Int = 512 * 1024 * 1024
    /// The deepest nesting of aggregates inside one reply.
    public var maxDepth: Int = 64
    /// The longest line of a simple string, error, number or type header, in bytes.
    public var maxLineLength: Int = 1024 * 1024

    public init() {}
}

/// A reply the client cannot read. The connection it came on is closed: after a malformed
/// reply, nothing that follows can be matched to its command.
public struct RESPParsingError: Error, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Code: String, Sendable, Hashable {
        /// A type byte RESP does not define.
        case unknownType
        /// A length, integer, double or boolean that does not parse.
        case invalidNumber
        /// A line or a string payload not ended by CRLF.
        case missingCRLF
        /// A bulk string over ``RESPParserLimits/maxBulkLength``.
        case bulkTooLarge
        /// An aggregate over ``RESPParserLimits/maxAggregateLength``.
        case aggregateTooLarge
        /// Nesting deeper than ``RESPParserLimits/maxDepth``.
        case nestedTooDeeply
        /// A line over ``RESPParserLimits/maxLineLength``.
        case lineTooLong
    }

    public var code: Code
    /// Where in the stream it was found, for the log line.
    public var offset: Int

    public var description: String { "malformed RESP reply (\(self.code.rawValue)) at byte \(self.offset)" }
}

/// An incremental RESP2/RESP3 reply parser.
///
/// Feed it bytes as they arrive; ``next(from:)`` returns a complete reply, or `nil` when more
/// bytes are needed, having consumed what it could. Aggregates are built as their elements
/// arrive, so a large array delivered in many reads is parsed once, not again from its start.
/// No length is trusted beyond ``RESPParserLimits``; nothing is reserved on a declared length.
/// Attributes (`|`) are read and dropped.
public struct RESPParser: Sendable {
    public let limits: RESPParserLimits

    /// Aggregates whose elements are still arriving, outermost first.
    private var stack: [Aggregate] = []
    /// Bytes consumed so far, for error offsets.
    private var consumed = 0

    private enum Kind: UInt8 {
        case array = 0x2A  // *
        case set = 0x7E  // ~
        case map = 0x25  // %
        case push = 0x3E  // >
        case attribute = 0x7C  // |
    }

    private struct Aggregate: Sendable {
        var kind: Kind
        /// Values still to read (a map's pairs count twice).
        var remaining: Int
        var values: [RESPValue]
    }

    public init(limits: RESPParserLimits = RESPParserLimits()) {
        self.limits = limits
    }

    /// The next complete reply in `buffer`, consuming its bytes; `nil` when it needs more.
    public mutating func next(from buffer: inout ByteBuffer) throws(RESPParsingError) -> RESPValue? {
        if self.stack.isEmpty, let (value, length) = self.scalar(in: buffer) {
            buffer.moveReaderIndex(forwardBy: length)
            self.consumed += length
            return value
        }
        while true {
            let start = buffer.readerIndex
            guard let token = try self.token(from: &buffer) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            self.consumed += buffer.readerIndex - start
            var value: RESPValue
            switch token {
            case .value(let scalar):
                value = scalar
            case .aggregate(let kind, let count):
                if count > 0 {
                    guard self.stack.count < self.limits.maxDepth else {
                        throw RESPParsingError(code: .nestedTooDeeply, offset: self.consumed)
                    }
                    let values = kind == .map || kind == .attribute ? count * 2 : count
                    var reserved: [RESPValue] = []
                    reserved.reserveCapacity(min(values, 16))
                    self.stack.append(Aggregate(kind: kind, remaining: values, values: reserved))
                    continue
                }
                guard let empty = Self.build(kind, []) else { continue }
                value = empty
            }
            // Hand the value to the aggregates it completes, innermost first.
            while true {
                guard !self.stack.isEmpty else { return value }
                let last = self.stack.count - 1
                self.stack[last].values.append(value)
                self.stack[last].remaining -= 1
                guard self.stack[last].remaining == 0 else { break }
                let done = self.stack.removeLast()
                guard let built = Self.build(done.kind, done.values) else { break }
                value = built
            }
        }
    }

    /// The common replies of a pipelined client, a complete and valid `+`, `:` or `$` reply
    /// at the start of `buffer`, read in one pass over its bytes: the value and its length.
    /// `nil` for anything else (another type, an incomplete or a malformed reply), which
    /// ``next(from:)`` then reads the general way, with its errors.
    private func scalar(in buffer: ByteBuffer) -> (RESPValue, Int)? {
        let found = buffer.withUnsafeReadableBytes { bytes -> (type: UInt8, length: Int, start: Int, end: Int)? in
            // `length` and `start`: of the line after the type byte (`+`, `:`) or of the bulk
            // payload (`$`); `end`: just past the reply's last CRLF.
            guard bytes.count >= 4, let type = bytes.first,
                type == UInt8(ascii: "+") || type == UInt8(ascii: ":") || type == UInt8(ascii: "$")
            else { return nil }
            var cr = 1
            let lineLimit = min(bytes.count - 1, self.limits.maxLineLength + 1)
            while cr < lineLimit && bytes[cr] != 0x0D { cr += 1 }
            guard cr < lineLimit, bytes[cr + 1] == 0x0A else { return nil }
            let line = cr - 1
            guard type == UInt8(ascii: "$") else { return (type, line, 1, cr + 2) }
            guard line > 0, line <= 10,
                let length = Self.parseInteger(UnsafeRawBufferPointer(rebasing: bytes[1..<cr])),
                length >= 0, length <= self.limits.maxBulkLength
            else { return nil }
            let start = cr + 2
            let end = start + Int(length) + 2
            guard end <= bytes.count, bytes[end - 2] == 0x0D, bytes[end - 1] == 0x0A else { return nil }
            return (type, Int(length), start, end)
        }
        guard let found else { return nil }
        let reader = buffer.readerIndex
        switch found.type {
        case UInt8(ascii: "+"):
            guard let line = buffer.getSlice(at: reader + found.start, length: found.length) else { return nil }
            return (.simpleString(line), found.end)
        case UInt8(ascii: ":"):
            let value = buffer.withUnsafeReadableBytes { bytes in
                Self.parseInteger(UnsafeRawBufferPointer(rebasing: bytes[found.start..<(found.start + found.length)]))
            }
            guard let value else { return nil }
            return (.integer(value), found.end)
        default:
            guard let payload = buffer.getSlice(at: reader + found.start, length: found.length) else { return nil }
            return (.bulkString(payload), found.end)
        }
    }

    private static func build(_ kind: Kind, _ values: [RESPValue]) -> RESPValue? {
        switch kind {
        case .array: return .array(values)
        case .set: return .set(values)
        case .push: return .push(values)
        case .attribute: return nil  // dropped: it only annotates the next reply
        case .map:
            var entries: [RESPMapEntry] = []
            entries.reserveCapacity(values.count / 2)
            var index = 0
            while index + 1 < values.count {
                entries.append(RESPMapEntry(key: values[index], value: values[index + 1]))
                index += 2
            }
            return .map(entries)
        }
    }

    private enum Token {
        case value(RESPValue)
        case aggregate(Kind, Int)
    }

    /// Reads one type byte and what belongs to it; `nil` when incomplete (the caller rewinds).
    private func token(from buffer: inout ByteBuffer) throws(RESPParsingError) -> Token? {
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let line = try self.line(from: &buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return .value(.simpleString(line))
        case UInt8(ascii: "-"):
            return .value(.error(line))
        case UInt8(ascii: ":"):
            return .value(.integer(try self.integer(line)))
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let length = try self.integer(line)
            if length == -1 && type == UInt8(ascii: "$") { return .value(.null) }
            guard length >= 0 else { throw RESPParsingError(code: .invalidNumber, offset: self.consumed) }
            guard length <= self.limits.maxBulkLength else {
                throw RESPParsingError(code: .bulkTooLarge, offset: self.consumed)
            }
            let count = Int(length)
            guard buffer.readableBytes >= count + 2 else { return nil }
            guard var payload = buffer.readSlice(length: count) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RESPParsingError(code: .missingCRLF, offset: self.consumed + count)
            }
            switch type {
            case UInt8(ascii: "$"): return .value(.bulkString(payload))
            case UInt8(ascii: "!"): return .value(.error(payload))
            default:
                // `txt:` or `mkd:` comes first.
                guard payload.readableBytes >= 4 else {
                    throw RESPParsingError(code: .invalidNumber, offset: self.consumed)
                }
                payload.moveReaderIndex(forwardBy: 4)
                return .value(.verbatimString(payload))
            }
        case UInt8(ascii: "_"):
            guard line.readableBytes == 0 else { throw RESPParsingError(code: .invalidNumber, offset: self.consumed) }
            return .value(.null)
        case UInt8(ascii: "#"):
            switch line.getInteger(at: line.readerIndex, as: UInt8.self) {
            case UInt8(ascii: "t") where line.readableBytes == 1: return .value(.boolean(true))
            case UInt8(ascii: "f") where line.readableBytes == 1: return .value(.boolean(false))
            default: throw RESPParsingError(code: .invalidNumber, offset: self.consumed)
            }
        case UInt8(ascii: ","):
            return .value(.double(try self.double(line)))
        case UInt8(ascii: "("):
            let valid =
                line.readableBytes > 0
                && line.readableBytesView.enumerated().allSatisfy { index, byte in
                    (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                        || (index == 0 && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")))
                }
            guard valid else { throw RESPParsingError(code: .invalidNumber, offset: self.consumed) }
            return .value(.bigNumber(line))
        default:
            guard let kind = Kind(rawValue: type) else {
                throw RESPParsingError(code: .unknownType, offset: self.consumed)
            }
            let count = try self.integer(line)
            if count == -1 && kind == .array { return .value(.null) }
            guard count >= 0 else { throw RESPParsingError(code: .invalidNumber, offset: self.consumed) }
            guard count <= self.limits.maxAggregateLength else {
                throw RESPParsingError(code: .aggregateTooLarge, offset: self.consumed)
            }
            return .aggregate(kind, Int(count))
        }
    }

    /// The bytes up to the next CRLF, consuming the CRLF; `nil` when it has not arrived.
    private func line(from buffer: inout ByteBuffer) throws(RESPParsingError) -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 0x0D) else {
            guard view.count <= self.limits.maxLineLength else {
                throw RESPParsingError(code: .lineTooLong, offset: self.consumed)
            }
            return nil
        }
        let length = cr - view.startIndex
        guard length <= self.limits.maxLineLength else {
            throw RESPParsingError(code: .lineTooLong, offset: self.consumed)
        }
        guard view.count > length + 1 else { return nil }
        guard view[cr + 1] == 0x0A else { throw RESPParsingError(code: .missingCRLF, offset: self.consumed + length) }
        let line = buffer.readSlice(length: length)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private func integer(_ line: ByteBuffer) throws(RESPParsingError) -> Int64 {
        guard let value = line.withUnsafeReadableBytes({ Self.parseInteger($0) }) else {
            throw RESPParsingError(code: .invalidNumber, offset: self.consumed)
        }
        return value
    }

    private func double(_ line: ByteBuffer) throws(RESPParsingError) -> Double {
        let text = String(buffer: line)
        switch text {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default:
            let allowed = text.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || [UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")]
                        .contains(byte)
            }
            guard allowed, let value = Double(text) else {
                throw RESPParsingError(code: .invalidNumber, offset: self.consumed)
            }
            return value
        }
    }

    /// A decimal integer with an optional sign, no spaces, no overflow.
    static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
            guard bytes.count > 1 else { return nil }
        }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) =
                negative
                ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
            index += 1
        }
        return value
    }
}
