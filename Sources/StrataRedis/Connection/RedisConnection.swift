import Logging
import NIOCore
import NIOPosix
import Synchronization

/// What a connection's handler and its pool share: commands in flight, and hooks.
final class ConnectionCounters: Sendable {
    /// Commands handed to the connection and not yet answered (or failed).
    let inFlight = Atomic<Int>(0)
    /// `NIODeadline` uptime nanoseconds of the last command, for the idle sweep.
    let lastUsed = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)
    let isClosed = Atomic<Bool>(false)
    private let onAnswered: @Sendable () -> Void
    private let onClosed: @Sendable () -> Void
    private let onTimeout: @Sendable () -> Void

    init(
        onAnswered: @escaping @Sendable () -> Void,
        onClosed: @escaping @Sendable () -> Void,
        onTimeout: @escaping @Sendable () -> Void
    ) {
        self.onAnswered = onAnswered
        self.onClosed = onClosed
        self.onTimeout = onTimeout
    }

    func answered(_ count: Int) {
        self.inFlight.subtract(count, ordering: .relaxed)
        self.onAnswered()
    }

    func closed() {
        guard !self.isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.onClosed()
    }

    func timedOut() { self.onTimeout() }
}

/// One connection to one server, shared by any number of tasks.
///
/// Commands sent from many tasks at once are queued under a lock and written back to back in
/// one write per event-loop turn (automatic pipelining); their replies are matched in order.
final class RedisConnection: Sendable {
    let channel: any Channel
    /// The channel's event loop, compared when a caller on a loop looks for a connection there.
    let eventLoopID: ObjectIdentifier
    let endpoint: RedisConfiguration.Endpoint
    let counters: ConnectionCounters
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let commandTimeout: TimeAmount
    private let outbox = Mutex<Outbox>(Outbox())
    /// The most bytes of outbox storage kept between writes.
    static let keptOutboxBytes = 256 * 1024
    /// Commands are held back for the next read while at least this many replies are due on
    /// the connection...
    static let holdWhileReplyDue = 16
    /// ...and until this many are waiting: then they go out at once.
    static let holdAtMost = 256
    /// Set once the handshake chose RESP3.
    let protocolVersion = Atomic<UInt8>(2)

    /// Commands waiting for the next write: their bytes, already encoded, and the reply slots
    /// of those that expect a reply (with the extra timeout of a blocking command).
    private struct Outbox {
        var bytes = ByteBuffer()
        var replies = CircularBuffer<(reply: PendingReply, extraTimeout: TimeAmount)>(initialCapacity: 16)
        var scheduled = false
        /// The waiting commands go out after the connection's next read (`scheduled` stays set,
        /// so no one schedules a write meanwhile), unless `holdAtMost` of them gather first.
        var heldBack = false
    }

    private init(
        channel: any Channel,
        endpoint: RedisConfiguration.Endpoint,
        counters: ConnectionCounters,
        handler: NIOLoopBound<RedisChannelHandler>,
        commandTimeout: TimeAmount
    ) {
        self.channel = channel
        self.eventLoopID = ObjectIdentifier(channel.eventLoop)
        self.endpoint = endpoint
        self.counters = counters
        self.handler = handler
        self.commandTimeout = commandTimeout
    }

    /// Opens a TCP or unix-socket connection (no handshake yet).
    static func connect(
        to endpoint: RedisConfiguration.Endpoint,
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        counters: ConnectionCounters,
        logger: Logger
    ) async throws -> RedisConnection {
        let commandTimeout = TimeAmount(configuration.commandTimeout)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            // Replies to a pipelined batch arrive together: read them in large buffers so the
            // callers they answer are resumed, and their next commands written, as one batch
            // rather than in 2 KiB slices (NIO's first guess).
            .channelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RedisChannelHandler(
                            limits: configuration.parserLimits, counters: counters, commandTimeout: commandTimeout,
                            logger: logger))
                }
            }
        let channel: any Channel
        switch endpoint {
        case .tcp(let host, let port):
            channel = try await bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
        case .unixSocket(let path):
            channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self),
                eventLoop: channel.eventLoop)
        }.get()
        let connection = RedisConnection(
            channel: channel, endpoint: endpoint, counters: counters, handler: handler, commandTimeout: commandTimeout)
        // Commands held back for the replies in flight go out after each read, when the timer
        // fires and when the channel closes (the handler drops this hook then, which ends the
        // reference cycle it makes).
        try await channel.eventLoop.submit {
            handler.value.afterReplies = { _ in connection.drain(holding: false) }
        }.get()
        return connection
    }

    /// Whether the connection is still open.
    var isOpen: Bool { !self.counters.isClosed.load(ordering: .relaxed) }

    /// Sends one command and waits for its reply.
    ///
    /// - Parameter extraTimeout: added to the command timeout (blocking commands).
    func send(_ command: RedisCommand, extraTimeout: TimeAmount = .zero) async throws -> RESPValue {
        try await self.queue(command, extraTimeout: extraTimeout).value()
    }

    /// Queues one command and returns the slot its reply will fill: the part of
    /// ``send(_:extraTimeout:)`` before it waits, for a caller that awaits the reply itself
    /// (one async call fewer per command).
    func queue(_ command: RedisCommand, extraTimeout: TimeAmount = .zero) throws -> PendingReply {
        let reply = PendingReply()
        try self.enqueue(replies: 1) { outbox in
            command.write(into: &outbox.bytes)
            outbox.replies.append((reply, extraTimeout))
        }
        return reply
    }

    /// Sends commands back to back, nothing else between them, and waits for every reply
    /// (`ASKING` + command, `MULTI` … `EXEC`).
    func send(batch commands: [RedisCommand]) async throws -> [RESPValue] {
        let replies = commands.map { _ in PendingReply() }
        try self.enqueue(replies: replies.count) { outbox in
            for (command, reply) in zip(commands, replies) {
                command.write(into: &outbox.bytes)
                outbox.replies.append((reply, .zero))
            }
        }
        var values: [RESPValue] = []
        values.reserveCapacity(replies.count)
        for reply in replies { values.append(try await reply.value()) }
        return values
    }

    /// Writes commands whose answers come as pushes (`SUBSCRIBE` on a subscriber connection).
    func write(_ command: RedisCommand) throws {
        try self.enqueue(replies: 0) { outbox in command.write(into: &outbox.bytes) }
    }

    /// Adds commands to the outbox (encoding them there, under its lock, so they are never
    /// copied on their way) and schedules a write if none is pending.
    private func enqueue(replies: Int, _ add: (inout Outbox) -> Void) throws {
        guard self.isOpen else {
            throw RedisClientError(.connectionClosed, mayHaveRun: false, message: "the connection is closed")
        }
        if replies > 0 { self.counters.inFlight.add(replies, ordering: .relaxed) }
        let schedule = self.outbox.withLock { outbox -> Bool in
            add(&outbox)
            if !outbox.scheduled {
                outbox.scheduled = true
                return true
            }
            // Enough held back to be worth a write of their own.
            if outbox.heldBack && outbox.replies.count >= Self.holdAtMost {
                outbox.heldBack = false
                return true
            }
            return false
        }
        if schedule {
            self.channel.eventLoop.execute { self.drain(holding: true) }
        }
    }

    /// On the event loop: writes everything queued in one write and one flush. The reply
    /// deadlines count from here, one clock read per write.
    ///
    /// Reply-clocked batching: with `holding` (a write scheduled by a caller), a small batch
    /// waits while `holdWhileReplyDue` replies are still due on the connection, and goes out
    /// after the next read, together with whatever else the callers queued meanwhile. Without
    /// it (after a read, a timer, the close) everything goes at once. Redis answers a
    /// connection's commands in order, so a held command's reply could not have come before
    /// those replies anyway; the batches, and so the writes and the server's reads, are fewer
    /// and larger (800 callers from the global executor: about 16 commands per write before,
    /// about 50 with it, and a tenth of the wake-ups of the event loop).
    ///
    /// The outbox gets back the storage of the previous write, emptied, so commands queued
    /// meanwhile are encoded into room that is already there rather than into a new buffer
    /// grown a doubling at a time. If the previous write is still pending, `clear()` finds
    /// its storage shared and takes new storage of the same size; a buffer past
    /// `Self.keptOutboxBytes` is not kept.
    private func drain(holding: Bool) {
        let handler = self.handler.value
        let hold = holding && handler.repliesDue >= Self.holdWhileReplyDue
        var bytes = handler.spareOutbox ?? ByteBuffer()
        bytes.clear()
        var replies = handler.spareReplies.take() ?? CircularBuffer(initialCapacity: 16)
        handler.spareOutbox = nil
        self.outbox.withLock { outbox in
            if hold && !outbox.replies.isEmpty && outbox.replies.count < Self.holdAtMost {
                outbox.heldBack = true
                return
            }
            outbox.scheduled = false
            outbox.heldBack = false
            swap(&bytes, &outbox.bytes)
            swap(&replies, &outbox.replies)
        }
        defer {
            if bytes.capacity <= Self.keptOutboxBytes { handler.spareOutbox = bytes }
            replies.removeAll(keepingCapacity: true)
            handler.spareReplies = replies
        }
        guard bytes.readableBytes > 0 else { return }
        if let failure = handler.failure {
            if !replies.isEmpty { self.counters.answered(replies.count) }
            while let (reply, _) = replies.popFirst() {
                reply.resume(.failure(RedisClientError(failure.code, mayHaveRun: false, message: failure.message)))
            }
            return
        }
        let now = NIODeadline.now()
        self.counters.lastUsed.store(now.uptimeNanoseconds, ordering: .relaxed)
        let deadline = now + self.commandTimeout
        // Taken out of the list rather than copied from it (which retained each slot, and
        // released it again when the list was emptied).
        while let (reply, extraTimeout) = replies.popFirst() {
            handler.expect(reply, deadline: deadline + extraTimeout)
        }
        self.channel.writeAndFlush(bytes, promise: nil)
    }

    /// Sets the handler that receives every reply and push (a subscriber connection).
    func route(pushesTo onPush: @escaping @Sendable (RESPValue) -> Void) async throws {
        try await self.channel.eventLoop.submit { self.handler.value.onPush = onPush }.get()
    }

    /// Closes the connection; commands waiting for replies fail.
    func close() {
        self.channel.close(promise: nil)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
