public import NIOCore
import NIOPosix
import Synchronization

/// A raw TCP connection for socket tests: sends exact bytes, reads what comes back.
///
/// Nothing is parsed or fixed up, so malformed and adversarial requests reach the server as
/// written. Every read has a deadline, so a test that expects a close cannot hang.
///
/// ```swift
/// let text = try await RawHTTPClient.withConnection(port: port) { connection in
///     try await connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
///     return try await connection.readUntilClose()
/// }
/// ```
public final class RawHTTPClient {
    private let received: Received
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// What a background task has read off the connection so far.
    private final class Received: Sendable {
        let state = Mutex<(chunks: [ByteBuffer], closed: Bool)>(([], false))
        let paused = Atomic<Bool>(false)
    }

    private init(received: Received, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.received = received
        self.outbound = outbound
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
            let received = Received()
            let reader = Task {
                do {
                    var iterator = inbound.makeAsyncIterator()
                    while true {
                        // While paused nothing is read, so the server's writes back up as a slow
                        // client's would.
                        while received.paused.load(ordering: .acquiring) {
                            try await Task.sleep(for: .milliseconds(5))
                        }
                        guard let buffer = try await iterator.next() else { break }
                        received.state.withLock { $0.chunks.append(buffer) }
                    }
                } catch {}
                received.state.withLock { $0.closed = true }
            }
            defer { reader.cancel() }
            let result = try await body(RawHTTPClient(received: received, outbound: outbound))
            channel.channel.close(promise: nil)
            return result
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

    /// Stops reading from the socket (after the read in progress), so the server's writes back
    /// up like a slow client's; ``read(timeout:)`` resumes reading.
    public func pauseReading() {
        self.received.paused.store(true, ordering: .releasing)
    }

    /// Closes the sending direction (the server sees end of input).
    public func shutdownOutput() {
        self.outbound.finish()
    }

    /// Reads whatever has arrived, waiting for something; `nil` when the server closed the
    /// connection and everything was read.
    ///
    /// - Throws: ``RawHTTPClientTimeout`` when nothing arrives within `timeout`. The connection
    ///   stays open, so a test can go on sending.
    public func read(timeout: Duration = .seconds(10)) async throws -> ByteBuffer? {
        self.received.paused.store(false, ordering: .releasing)
        let deadline = ContinuousClock.now + timeout
        while true {
            let (chunk, closed) = self.received.state.withLock { state -> (ByteBuffer?, Bool) in
                guard !state.chunks.isEmpty else { return (nil, state.closed) }
                var merged = state.chunks.removeFirst()
                while !state.chunks.isEmpty {
                    var next = state.chunks.removeFirst()
                    merged.writeBuffer(&next)
                }
                return (merged, state.closed)
            }
            if let chunk { return chunk }
            if closed { return nil }
            guard ContinuousClock.now < deadline else { throw RawHTTPClientTimeout() }
            try await Task.sleep(for: .milliseconds(5))
        }
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

/// A raw read did not complete in time.
public struct RawHTTPClientTimeout: Error, CustomStringConvertible {
    public var description: String { "no data from the server in time" }
}
