import Logging
public import NIOCore
import Synchronization

/// A message received on a subscription.
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel it was published to.
    public var channel: String
    /// The pattern that matched, for `PSUBSCRIBE`.
    public var pattern: String?
    public var payload: ByteBuffer
}

/// Messages of `SUBSCRIBE`/`PSUBSCRIBE` on a connection of their own, as an `AsyncSequence`.
///
/// ```swift
/// let subscription = try await redis.subscribe(to: ["chat"])
/// for try await message in subscription { print(String(buffer: message.payload)) }
/// ```
///
/// Iterate it from one task. Messages wait in a buffer of `bufferLimit`; a consumer so slow
/// that it overflows ends the sequence with ``RedisClientError`` (`poolExhausted`) rather than
/// losing messages silently. The connection closes when iteration ends or ``close()`` is
/// called; a closed connection ends the sequence with `connectionClosed`.
public final class RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisPubSubMessage
    public typealias Failure = any Error

    private let stream: AsyncThrowingStream<RedisPubSubMessage, any Error>
    private let connection: RedisConnection

    init(stream: AsyncThrowingStream<RedisPubSubMessage, any Error>, connection: RedisConnection) {
        self.stream = stream
        self.connection = connection
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<RedisPubSubMessage, any Error>.AsyncIterator {
        self.stream.makeAsyncIterator()
    }

    /// Ends the subscription and closes its connection.
    public func close() {
        self.connection.close()
    }
}

extension RedisClient {
    /// `SUBSCRIBE`: returns once the server confirmed every channel.
    public func subscribe(to channels: [String], bufferLimit: Int = 10_000) async throws -> RedisSubscription {
        try await self.subscription("SUBSCRIBE", channels, bufferLimit: bufferLimit)
    }

    /// `PSUBSCRIBE` (glob patterns such as `news.*`): returns once every pattern is confirmed.
    public func psubscribe(to patterns: [String], bufferLimit: Int = 10_000) async throws -> RedisSubscription {
        try await self.subscription("PSUBSCRIBE", patterns, bufferLimit: bufferLimit)
    }

    private func subscription(_ verb: String, _ names: [String], bufferLimit: Int) async throws -> RedisSubscription {
        guard !names.isEmpty else {
            throw RedisClientError(.unexpectedReply, mayHaveRun: false, message: "\(verb) needs at least one name")
        }
        let pool = try await self.subscriptionPool(for: ByteBuffer(string: names[0]))
        let connection = try await pool.leaseDedicated()
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: RedisPubSubMessage.self, bufferingPolicy: .bufferingOldest(max(1, bufferLimit)))
        let confirmed = PendingReply()
        let state = SubscriptionState(expected: names.count)
        let logger = self.logger
        continuation.onTermination = { _ in pool.release(connection, reusable: false) }
        connection.channel.closeFuture.whenComplete { _ in
            let error = RedisClientError(
                .connectionClosed, mayHaveRun: false, message: "the subscription's connection closed")
            confirmed.resume(.failure(error))
            continuation.finish(throwing: error)
        }
        try await connection.route { value in
            guard let parts = value.elements, let kind = parts.first?.string?.lowercased() else {
                if case .error(let message) = value {
                    let error = RedisServerError(message)
                    confirmed.resume(.failure(error))
                    continuation.finish(throwing: error)
                }
                return
            }
            switch kind {
            case "message" where parts.count == 3:
                guard let channel = parts[1].string, let payload = parts[2].bytes else { return }
                Self.deliver(RedisPubSubMessage(channel: channel, payload: payload), continuation, connection, logger)
            case "pmessage" where parts.count == 4:
                guard let pattern = parts[1].string, let channel = parts[2].string, let payload = parts[3].bytes else {
                    return
                }
                Self.deliver(
                    RedisPubSubMessage(channel: channel, pattern: pattern, payload: payload), continuation, connection,
                    logger)
            case "subscribe", "psubscribe":
                if state.confirmOne() { confirmed.resume(.success(.null)) }
            default:
                break
            }
        }
        var command = RedisCommand(verb)
        for name in names { command.append(name) }
        try connection.write(command)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await confirmed.value() }
                group.addTask {
                    try await Task.sleep(for: self.configuration.commandTimeout)
                    throw RedisClientError(
                        .commandTimeout, mayHaveRun: true, message: "\(verb) was not confirmed in time")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            continuation.finish(throwing: error)
            throw error
        }
        return RedisSubscription(stream: stream, connection: connection)
    }

    private static func deliver(
        _ message: RedisPubSubMessage,
        _ continuation: AsyncThrowingStream<RedisPubSubMessage, any Error>.Continuation,
        _ connection: RedisConnection,
        _ logger: Logger
    ) {
        if case .dropped = continuation.yield(message) {
            logger.warning("closing a Redis subscription whose consumer fell behind its buffer")
            continuation.finish(
                throwing: RedisClientError(
                    .poolExhausted, mayHaveRun: false, message: "the subscriber fell behind its buffer"))
            connection.close()
        }
    }
}

/// Counts `subscribe` confirmations.
private final class SubscriptionState: Sendable {
    private let remaining: Atomic<Int>

    init(expected: Int) {
        self.remaining = Atomic(expected)
    }

    /// Whether this confirmation was the last one expected.
    func confirmOne() -> Bool {
        self.remaining.subtract(1, ordering: .relaxed).newValue == 0
    }
}
