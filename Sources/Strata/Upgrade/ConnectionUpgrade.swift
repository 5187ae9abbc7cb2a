public import Logging
public import NIOCore

/// Takes over a connection after a `101 Switching Protocols` response.
///
/// A handler decides from the request head whether to upgrade and answers with status 101 and an
/// upgrade. The server writes the 101, stops speaking HTTP on the connection and runs `run` with
/// the connection's bytes in both directions. Bytes the client sent after the upgrade request
/// (pipelined behind it) are the first bytes of ``UpgradedConnection/inbound``.
///
/// ```swift
/// var response = ServerResponse(status: .switchingProtocols, headerFields: [.upgrade: "echo", .connection: "upgrade"])
/// response.upgrade = ConnectionUpgrade { connection in
///     for try await bytes in connection.inbound { try await connection.outbound.write(bytes) }
/// }
/// ```
public struct ConnectionUpgrade: Sendable {
    /// Runs the upgraded protocol; the connection closes when it returns or throws.
    public let run: @Sendable (UpgradedConnection) async throws -> Void

    /// Creates an upgrade that runs `run` on the connection.
    public init(_ run: @escaping @Sendable (UpgradedConnection) async throws -> Void) {
        self.run = run
    }
}

/// A connection handed over after a protocol upgrade.
public struct UpgradedConnection: Sendable {
    /// Bytes from the client, in order, read once.
    public let inbound: Inbound
    /// Writes bytes to the client.
    public let outbound: any UpgradedConnectionWriter
    /// The connection's logger.
    public var logger: Logger
    /// The peer address.
    public let remoteAddress: SocketAddress?

    /// Creates a handed-over connection (used by servers and test clients).
    public init(
        inbound: Inbound,
        outbound: any UpgradedConnectionWriter,
        logger: Logger,
        remoteAddress: SocketAddress?
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.logger = logger
        self.remoteAddress = remoteAddress
    }

    /// The bytes a client sends on an upgraded connection.
    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        public typealias Failure = any Error

        @usableFromInline
        let base: any AsyncSequence<ByteBuffer, any Error> & Sendable

        /// Wraps a stream of received bytes.
        public init<Base: AsyncSequence & Sendable>(_ base: Base)
        where Base.Element == ByteBuffer, Base.Failure == any Error {
            self.base = base
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: self.base.makeAsyncIterator())
        }

        /// Iterates the received bytes.
        public struct AsyncIterator: AsyncIteratorProtocol {
            @usableFromInline
            var base: any AsyncIteratorProtocol<ByteBuffer, any Error>

            public mutating func next() async throws -> ByteBuffer? {
                try await self.base.next()
            }
        }
    }
}

/// Writes bytes on an upgraded connection.
public protocol UpgradedConnectionWriter: Sendable {
    /// Writes `buffer`, returning when the connection accepted it.
    func write(_ buffer: ByteBuffer) async throws
    /// Writes several buffers with one flush.
    func write(contentsOf buffers: [ByteBuffer]) async throws
    /// Closes the sending direction; the connection closes once `run` returns.
    func finish()
}
