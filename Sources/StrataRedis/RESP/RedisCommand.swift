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
    /// The encoded arguments, after the array header: one allocation (a `ByteBuffer` takes two).
    private var arguments: [UInt8]
    private var count: Int

    /// Starts a command with its name and, optionally, its first key (written right after it).
    public init(_ name: String, key: ByteBuffer? = nil) {
        self.init(name, key: key, reservingCapacity: 0)
    }

    /// Starts a command with room for `extra` more bytes of arguments, so a value appended
    /// next does not grow (and copy) the storage.
    init(_ name: String, key: ByteBuffer?, reservingCapacity extra: Int) {
        self.name = name
        self.arguments = []
        self.arguments.reserveCapacity(32 + name.utf8.count + (key?.readableBytes ?? 0) + extra)
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
        self.arguments.appendLengthLine(prefix: UInt8(ascii: "$"), bytes.readableBytes)
        // As raw bytes: the view's own `append` goes through a generic iterator, byte by byte.
        bytes.withUnsafeReadableBytes { self.arguments.append(contentsOf: $0) }
        self.arguments.append(UInt8(ascii: "\r"))
        self.arguments.append(UInt8(ascii: "\n"))
    }

    /// Appends a binary-safe argument.
    public mutating func append(bytes: some Collection<UInt8>) {
        self.count += 1
        self.arguments.appendLengthLine(prefix: UInt8(ascii: "$"), bytes.count)
        if bytes.withContiguousStorageIfAvailable({ self.arguments.append(contentsOf: $0) }) == nil {
            self.arguments.append(contentsOf: bytes)
        }
        self.arguments.append(UInt8(ascii: "\r"))
        self.arguments.append(UInt8(ascii: "\n"))
    }

    /// Appends a string argument as UTF-8.
    public mutating func append(_ string: String) {
        self.count += 1
        self.arguments.appendLengthLine(prefix: UInt8(ascii: "$"), string.utf8.count)
        self.arguments.append(contentsOf: string.utf8)
        self.arguments.append(UInt8(ascii: "\r"))
        self.arguments.append(UInt8(ascii: "\n"))
    }

    /// Appends an integer argument in decimal.
    public mutating func append(_ integer: Int) {
        self.append(String(integer))
    }

    func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.arguments.count + 16)
        self.write(into: &buffer)
        return buffer
    }

    /// Writes the wire bytes at the end of `buffer`.
    func write(into buffer: inout ByteBuffer) {
        buffer.writeLengthLine(prefix: UInt8(ascii: "*"), self.count)
        buffer.writeBytes(self.arguments)
    }

    /// How many bytes ``write(into:)`` adds.
    var encodedSize: Int { self.arguments.count + 14 }
}

extension [UInt8] {
    /// Appends `<prefix><length>\r\n` (a RESP bulk header).
    mutating func appendLengthLine(prefix: UInt8, _ length: Int) {
        self.append(prefix)
        if length >= 0 && length < 10 {
            self.append(UInt8(ascii: "0") + UInt8(length))
        } else if length > 0 {
            // Digits written in place, most significant first, with no string in between.
            var divisor = 10
            while divisor <= length / 10 { divisor *= 10 }
            var rest = length
            while divisor > 0 {
                self.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        } else {
            self.append(contentsOf: String(length).utf8)
        }
        self.append(UInt8(ascii: "\r"))
        self.append(UInt8(ascii: "\n"))
    }
}

extension ByteBuffer {
    /// Writes `<prefix><length>\r\n` (a RESP array header): one 4-byte write for the usual
    /// one-digit count.
    mutating func writeLengthLine(prefix: UInt8, _ length: Int) {
        if length >= 0 && length < 10 {
            let line = UInt32(prefix) << 24 | UInt32(UInt8(ascii: "0") + UInt8(length)) << 16 | UInt32(0x0D0A)
            self.writeInteger(line, endianness: .big)
            return
        }
        self.writeInteger(prefix)
        self.writeString(String(length))
        self.writeStaticString("\r\n")
    }
}
