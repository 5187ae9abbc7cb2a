public import NIOCore

/// A failure of the client, not of the command: the command got no reply.
///
/// ``mayHaveRun`` says whether the command may have reached the server. The client never
/// resends such a command on its own: an `INCR` that may have run once must not run twice.
public struct RedisClientError: Error, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// The connection could not be made (refused, unreachable, handshake refused); the
        /// command was not sent.
        case connectionFailed
        /// The connection closed (or was found dead) with the command written and no reply.
        case connectionClosed
        /// No reply within ``RedisConfiguration/commandTimeout``. A late reply is read and
        /// dropped, so the connection stays in step.
        case commandTimeout
        /// Every connection of the pool was busy and no slot freed within
        /// ``RedisConfiguration/acquireTimeout``, or the waiter queue was full.
        case poolExhausted
        /// The server sent a reply that does not parse, or is over the parser's limits; the
        /// connection was closed.
        case protocolViolation
        /// The reply has another type than the command's typed API expects.
        case unexpectedReply
        /// A cluster kept redirecting or stayed down past the retry bound.
        case clusterUnavailable
        /// The client is shutting down or shut down.
        case shutdown
    }

    public var code: Code
    /// Whether the command may have reached the server (and run).
    public var mayHaveRun: Bool
    /// Detail for the log line: never keys or values.
    public var message: String

    public init(_ code: Code, mayHaveRun: Bool, message: String) {
        self.code = code
        self.mayHaveRun = mayHaveRun
        self.message = message
    }

    public var description: String {
        "redis client error (\(self.code.rawValue)\(self.mayHaveRun ? ", may have run" : "")): \(self.message)"
    }
}

/// An error reply from the server (`-ERR ...`, `-WRONGTYPE ...`, `-CROSSSLOT ...`).
public struct RedisServerError: Error, Hashable, CustomStringConvertible {
    /// The whole error line.
    public var message: String

    public init(message: String) {
        self.message = message
    }

    init(_ buffer: ByteBuffer) {
        self.message = String(buffer: buffer)
    }

    /// The error's first word: `ERR`, `WRONGTYPE`, `MOVED`, `NOSCRIPT`, `CROSSSLOT`...
    public var prefix: Substring { self.message.prefix { $0 != " " } }

    /// Whether the keys of a multi-key command live in different cluster slots: give them a
    /// common hash tag (`{user:1}:a`, `{user:1}:b`).
    public var isCrossSlot: Bool { self.prefix == "CROSSSLOT" }

    public var description: String { "redis error: \(self.message)" }
}

/// A `redis://` URL or a configuration that cannot work, found at init.
public struct RedisConfigurationError: Error, Hashable, CustomStringConvertible {
    /// What to change.
    public var problems: [String]

    public var description: String {
        "invalid Redis configuration: " + self.problems.joined(separator: "; ")
    }
}
