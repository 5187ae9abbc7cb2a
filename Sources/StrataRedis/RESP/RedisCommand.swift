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
    /// Whether `key` is also the command's first argument, written right after the name. It
    /// is kept as it came rather than encoded, so a command of a name and a key (`GET`, `DEL`,
    /// `INCR`) takes no allocation of its own.
    private var keyIsWritten: Bool
    /// The encoded arguments after the name and the first key: one allocation, and none while
    /// empty (a `ByteBuffer` would take two).
    private var arguments: [UInt8]
    /// How many words the command has, its name included.
    private var count: Int

    /// Starts a command with its name and, optionally, its first key (written right after it).
    public init(_ name: String, key: ByteBuffer? = nil) {
        self.init(name, key: key, reservingCapacity: 0)
    }

    /// Starts a command with room for `extra` more bytes of arguments, so a value appended
    /// next does not grow (and copy) the storage.
    init(_ name: String, key: ByteBuffer?, reservingCapacity extra: Int) {
        self.name = name
        self.key = key
        self.keyIsWritten = key != nil
        self.arguments = []
        if extra > 0 { self.arguments.reserveCapacity(extra) }
        self.count = key == nil ? 1 : 2
    }

    /// Starts a command keyed by a string.
    public init(_ name: String, key: String) {
        self.init(name, key: ByteBuffer(string: key))
    }

    /// Sets the routing key without writing it (for commands whose key is not first).
    public mutating func route(by key: ByteBuffer) {
        if self.keyIsWritten, let written = self.key {
            // The key written first stays first: encoded now, in front of the arguments.
            let rest = self.arguments
            self.arguments = []
            self.arguments.reserveCapacity(written.readableBytes + 24 + rest.count)
            self.appendBulk(written)
            self.arguments.append(contentsOf: rest)
            self.keyIsWritten = false
        }
        self.key = key
    }

    /// Appends a binary-safe argument.
    public mutating func append(_ bytes: ByteBuffer) {
        self.count += 1
        self.appendBulk(bytes)
    }

    /// Encodes `bytes` as a bulk string at the end of the arguments (the count is the caller's).
    private mutating func appendBulk(_ bytes: ByteBuffer) {
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

    /// Writes the wire bytes at the end of `buffer`, in one reservation and one copy of each
    /// part (each of the buffer's own writes checks its capacity and its exclusive access).
    func write(into buffer: inout ByteBuffer) {
        var name = self.name
        let nameCount = name.utf8.count
        let firstKey = self.keyIsWritten ? self.key : nil
        let keyCount = firstKey?.readableBytes ?? 0
        // Three length lines (a prefix, at most 20 digits, CRLF), two CRLFs, and the parts.
        let most = 3 * 23 + 4 + nameCount + keyCount + self.arguments.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: most) { output in
            var at = output.storeLengthLine(prefix: UInt8(ascii: "*"), self.count, at: 0)
            at = output.storeLengthLine(prefix: UInt8(ascii: "$"), nameCount, at: at)
            name.withUTF8 { at = output.store(UnsafeRawBufferPointer($0), crlf: true, at: at) }
            if let firstKey {
                at = output.storeLengthLine(prefix: UInt8(ascii: "$"), keyCount, at: at)
                firstKey.withUnsafeReadableBytes { at = output.store($0, crlf: true, at: at) }
            }
            self.arguments.withUnsafeBytes { at = output.store($0, crlf: false, at: at) }
            return at
        }
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores `<prefix><length>\r\n` at `at`; returns where it ends. The caller made room.
    @inline(__always)
    fileprivate func storeLengthLine(prefix: UInt8, _ length: Int, at start: Int) -> Int {
        var at = start
        self[at] = prefix
        at += 1
        if length >= 0 && length < 10 {
            self[at] = UInt8(ascii: "0") + UInt8(length)
            at += 1
        } else {
            // Lengths are counts: never negative here.
            forEachDigit(of: length) {
                self[at] = $0
                at += 1
            }
        }
        self[at] = UInt8(ascii: "\r")
        self[at + 1] = UInt8(ascii: "\n")
        return at + 2
    }

    /// Stores `bytes` (and a CRLF) at `at`; returns where they end. The caller made room.
    @inline(__always)
    fileprivate func store(_ bytes: UnsafeRawBufferPointer, crlf: Bool, at start: Int) -> Int {
        var at = start
        if let base = bytes.baseAddress, bytes.count > 0, let target = self.baseAddress {
            (target + at).copyMemory(from: base, byteCount: bytes.count)
            at += bytes.count
        }
        if crlf {
            self[at] = UInt8(ascii: "\r")
            self[at + 1] = UInt8(ascii: "\n")
            at += 2
        }
        return at
    }
}

extension [UInt8] {
    /// Appends `<prefix><length>\r\n` (a RESP bulk header).
    mutating func appendLengthLine(prefix: UInt8, _ length: Int) {
        self.append(prefix)
        if length >= 0 && length < 10 {
            self.append(UInt8(ascii: "0") + UInt8(length))
        } else if length > 0 {
            forEachDigit(of: length) { self.append($0) }
        } else {
            self.append(contentsOf: String(length).utf8)
        }
        self.append(UInt8(ascii: "\r"))
        self.append(UInt8(ascii: "\n"))
    }
}

/// Calls `body` with the ASCII decimal digits of `value` (not negative), most significant
/// first, with no string in between.
@inline(__always)
private func forEachDigit(of value: Int, _ body: (UInt8) -> Void) {
    var divisor = 1
    while divisor <= value / 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
        body(UInt8(ascii: "0") + UInt8(rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}
