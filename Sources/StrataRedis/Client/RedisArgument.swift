public import NIOCore

/// Anything that can be a command argument: bytes, strings, integers, keys.
public protocol RedisArgument: Sendable {
    /// Appends this value to `command`.
    func append(to command: inout RedisCommand)
}

extension ByteBuffer: RedisArgument {
    public func append(to command: inout RedisCommand) { command.append(self) }
}

extension String: RedisArgument {
    public func append(to command: inout RedisCommand) { command.append(self) }
}

extension Substring: RedisArgument {
    public func append(to command: inout RedisCommand) { command.append(String(self)) }
}

extension Array: RedisArgument where Element == UInt8 {
    public func append(to command: inout RedisCommand) { command.append(bytes: self) }
}

extension Int: RedisArgument {
    public func append(to command: inout RedisCommand) { command.append(self) }
}

extension Double: RedisArgument {
    public func append(to command: inout RedisCommand) { command.append(self.description) }
}

/// A key: binary-safe bytes, written from a string literal or built from bytes.
///
/// ```swift
/// let key: RedisKey = "session:{user:1}"
/// let binary = RedisKey(ByteBuffer(bytes: [0xd5, 0xa6]))
/// ```
public struct RedisKey: RedisArgument, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: ByteBuffer

    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = ByteBuffer(string: string) }
    public init(_ bytes: [UInt8]) { self.bytes = ByteBuffer(bytes: bytes) }
    public init(stringLiteral value: String) { self.init(value) }

    public func append(to command: inout RedisCommand) { command.append(self.bytes) }

    /// The cluster slot this key lives in.
    public var slot: HashSlot { HashSlot(key: self.bytes) }

    /// The key as text (for debugging; keys are not logged by the client).
    public var description: String { String(buffer: self.bytes) }
}

extension RedisCommand {
    /// A command whose first argument is `key` (which also routes it).
    public init(_ name: String, key: RedisKey, _ arguments: any RedisArgument...) {
        self.init(name, key: key.bytes)
        for argument in arguments { argument.append(to: &self) }
    }

    /// Appends any argument.
    public mutating func append(_ argument: some RedisArgument) {
        argument.append(to: &self)
    }
}
