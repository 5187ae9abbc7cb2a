public import NIOCore
import NIOPosix
import Synchronization

/// A raw TCP connection for socket tests: sends exact bytes, reads what comes back.
///
/// Nothing is parsed or fixed up, so malformed and adversarial requests reach the server as
/// written. Every read has a deadline, so a test that expects a close cannot hang: when the
/// deadline passes the connection is closed and the read throws ``RawHTTPClientTimeout``.
///
/// ```swift
/// let text = try await RawHTTPClient.withConnection(port: port) { connection in
///     try await connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
///     return try await connection.readUntilClose()
/// }
/// ```
public final class RawHTTPClient {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let channel: any Channel

    private init(
        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        channel: any Channel
    ) {
        self.iterator = iterator
        self.outbound = outbound
        self.channel = channel
    }

    /// Connects to `127.0.0.1:port`, runs `body`, and closes the connection.
    public static func withConnection<Result>(
        port: Int,
        _ body: (RawHTTPClient) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let client = RawHTTPClient(iterator: inbound.makeAsyncIterator(), outbound: outbound, channel: channel.channel)
            return try await body(client)
        }
    }

    /// Sends `text` as bytes.
    public func send(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(string: text))
    }

    /// Sends `bytes`.
    public func send(bytes: ByteBuffer) async throws {
        try await self.outbound.write(bytes)
    }

    /// Closes the sending direction (the server sees end of input).
    public func shutdownOutput() {
        self.outbound.finish()
    }

    /// Reads whatever arrives next; `nil` when the server closed the connection.
    ///
    /// - Throws: ``RawHTTPClientTimeout`` when nothing arrives within `timeout`.
    public func read(timeout: Duration = .seconds(10)) async throws -> ByteBuffer? {
        let timedOut = Atomic<Bool>(false)
        let channel = self.channel
        let (seconds, attoseconds) = timeout.components
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))) {
            timedOut.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        let buffer = try? await self.iterator.next()
        if timedOut.load(ordering: .relaxed) { throw RawHTTPClientTimeout() }
        return buffer ?? nil
    }

    /// Reads until the server closes the connection and returns everything as text.
    ///
    /// - Throws: ``RawHTTPClientTimeout`` when the server does not close within `timeout`.
    public func readUntilClose(timeout: Duration = .seconds(10)) async throws -> String {
        try await self.read(until: { _ in false }, timeout: timeout)
    }

    /// Reads until `predicate` holds for what was read so far, or the server closes.
    ///
    /// - Throws: ``RawHTTPClientTimeout`` when neither happens within `timeout`.
    public func read(until predicate: (String) -> Bool, timeout: Duration = .seconds(10)) async throws -> String {
        var text = ""
        let deadline = ContinuousClock.now + timeout
        while !predicate(text) {
            guard let buffer = try await self.read(timeout: deadline - ContinuousClock.now) else { break }
            text += String(buffer: buffer)
        }
        return text
    }

    /// Sends one request on a new connection and reads until the server closes it.
    public static func exchange(_ request: String, port: Int, timeout: Duration = .seconds(10)) async throws -> String {
        try await Self.withConnection(port: port) { client in
            try await client.send(request)
            return try await client.readUntilClose(timeout: timeout)
        }
    }
}

/// A raw read did not complete in time; the connection was closed.
public struct RawHTTPClientTimeout: Error, CustomStringConvertible {
    public var description: String { "no data from the server in time" }
}
