public import NIOCore

/// One command, encoded once as a RESP array of bulk strings, ready to be written.
///
/// ```swift
/// var command = RedisCommand("HSET", key: "user:1")
/// command.append("name")
/// command.append("Ada")
/// let reply = try await client.send(command)
/// ```
///
/// The key (when there is one) routes the command in a cluster; the name labels its metrics
/// and trace span. Values are never logged or traced.
public struct RedisCommand: Sendable {
    /// The command's name (`GET`, `EVALSHA`), as written first.
    public let name: String
    /// The key that routes the command to its cluster slot, if it has one.
    public private(set) var key: ByteBuffer?
    /// The encoded arguments, after the array header.
    private var arguments: ByteBuffer
    private var count: Int

    /// Starts a command with its name and, optionally, its first key (written right after it).
    public init(_ name: String, key: ByteBuffer? = nil) {
        self.name = name
        self.arguments = ByteBuffer()
        self.arguments.reserveCapacity(32 + name.utf8.count + (key?.readableBytes ?? 0))
        self.count = 0
        self.append(name)
        if let key {
            self.key = key
            self.append(key)
        }
    }

    /// Starts a command keyed by a string.
    public init(_ name: String, key: String) {
        self.init(name, key: ByteBuffer(string: key))
    }

    /// Sets the routing key without writing it (for commands whose key is not first).
    public mutating func route(by key: ByteBuffer) {
        self.key = key
    }

    /// Appends a binary-safe argument.
    public mutating func append(_ bytes: ByteBuffer) {
        self.count += 1
        self.arguments.writeInteger(UInt8(ascii: "$"))
        self.arguments.writeDecimal(bytes.readableBytes)
        self.arguments.writeStaticString("\r\n")
        self.arguments.writeImmutableBuffer(bytes)
        self.arguments.writeStaticString("\r\n")
    }

    /// Appends a binary-safe argument.
    public mutating func append(bytes: some Collection<UInt8>) {
        self.count += 1
        self.arguments.writeInteger(UInt8(ascii: "$"))
        self.arguments.writeDecimal(bytes.count)
        self.arguments.writeStaticString("\r\n")
        self.arguments.writeBytes(bytes)
        self.arguments.writeStaticString("\r\n")
    }

    /// Appends a string argument as UTF-8.
    public mutating func append(_ string: String) {
        self.count += 1
        self.arguments.writeInteger(UInt8(ascii: "$"))
        self.arguments.writeDecimal(string.utf8.count)
        self.arguments.writeStaticString("\r\n")
        self.arguments.writeString(string)
        self.arguments.writeStaticString("\r\n")
    }

    /// Appends an integer argument in decimal.
    public mutating func append(_ integer: Int) {
        var digits = ByteBuffer()
        digits.writeDecimal(integer)
        self.append(digits)
    }

    /// The wire bytes: `*<count>\r\n` and the arguments.
    func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.arguments.readableBytes + 16)
        self.write(into: &buffer)
        return buffer
    }

    /// Writes the wire bytes at the end of `buffer`.
    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeDecimal(self.count)
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(self.arguments)
    }

    /// How many bytes ``write(into:)`` adds.
    var encodedSize: Int { self.arguments.readableBytes + 14 }
}

extension ByteBuffer {
    /// Writes `value` in decimal ASCII without going through `String`.
    mutating func writeDecimal(_ value: Int) {
        if value >= 0 && value < 10 {
            self.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var magnitude = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { storage in
            repeat {
                storage[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            if value < 0 {
                storage[19 - count] = UInt8(ascii: "-")
                count += 1
            }
            self.writeBytes(UnsafeRawBufferPointer(rebasing: storage[(20 - count)...]))
        }
    }
}
