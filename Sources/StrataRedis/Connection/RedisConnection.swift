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
    private let queue: CommandQueue
    /// The most bytes of outbox storage kept between writes.
    static let keptOutboxBytes = 256 * 1024
    /// Commands are held back for the next read while at least this many replies are due on
    /// the connection...
    static let holdWhileReplyDue = 16
    /// ...and until this many are waiting: then they go out at once.
    static let holdAtMost = 256
    /// Set once the handshake chose RESP3.
    let protocolVersion = Atomic<UInt8>(2)

    private init(
        channel: any Channel,
        endpoint: RedisConfiguration.Endpoint,
        counters: ConnectionCounters,
        handler: NIOLoopBound<RedisChannelHandler>,
        queue: CommandQueue,
        commandTimeout: TimeAmount
    ) {
        self.channel = channel
        self.eventLoopID = ObjectIdentifier(channel.eventLoop)
        self.endpoint = endpoint
        self.counters = counters
        self.handler = handler
        self.queue = queue
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
        let queue = CommandQueue()
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
                            queue: queue, limits: configuration.parserLimits, counters: counters,
                            commandTimeout: commandTimeout, logger: logger))
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
            channel: channel, endpoint: endpoint, counters: counters, handler: handler, queue: queue,
            commandTimeout: commandTimeout)
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
    @inline(__always)
    func send(_ command: RedisCommand, extraTimeout: TimeAmount = .zero) async throws -> RESPValue {
        try await self.exchange(commands: 1, batch: false, extraTimeout: extraTimeout) { command.write(into: &$0) }
    }

    /// Sends commands back to back, nothing else between them, and waits for every reply
    /// (`ASKING` + command, `MULTI` … `EXEC`).
    func send(batch commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let reply = try await self.exchange(commands: commands.count, batch: true, extraTimeout: .zero) { bytes in
            for command in commands { command.write(into: &bytes) }
        }
        // A batch's replies always come as one array of them, even for a batch of one.
        guard case .array(let values) = reply, values.count == commands.count else {
            throw RedisClientError(.unexpectedReply, mayHaveRun: true, message: "a batch's replies did not match it")
        }
        return values
    }

    /// Writes commands whose answers come as pushes (`SUBSCRIBE` on a subscriber connection).
    func write(_ command: RedisCommand) throws {
        if let error = self.enqueue(
            commands: 0, batch: false, continuation: nil, owner: 0, missesBefore: nil, extraTimeout: .zero,
            { command.write(into: &$0) })
        {
            throw error
        }
    }

    /// Queues `commands` commands (`write` encodes them) and waits for the reply of the last,
    /// or with `batch`, for an array of all their replies.
    ///
    /// The caller's continuation goes into the queue itself. Its cancellation takes it back
    /// from there under the queue's lock, so no object per command is needed to decide who
    /// answers it. A task cancelled before its command is queued sends nothing; one cancelled
    /// after is answered with `CancellationError` at once, and the reply is dropped when it
    /// comes.
    ///
    /// The task's cancellation is read only when it matters: a handler that runs before the
    /// slot is queued (at once, when it is installed in a task cancelled already) finds no
    /// slot and counts a miss under the queue's lock, and the queueing, under the same lock,
    /// sees the count moved since it was read here and reads the task's cancellation then.
    /// A handler that runs after finds the slot. Either way the command is answered once.
    @inline(__always)
    private func exchange(
        commands: Int, batch: Bool, extraTimeout: TimeAmount, _ write: (inout ByteBuffer) -> Void
    ) async throws -> RESPValue {
        let owner = CommandQueue.currentTask()
        let missesBefore = self.queue.missedCancellations.load(ordering: .acquiring)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                if let error = self.enqueue(
                    commands: commands, batch: batch, continuation: continuation, owner: owner,
                    missesBefore: missesBefore, extraTimeout: extraTimeout, write)
                {
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            self.cancel(owner: owner)
        }
    }

    /// Answers `owner`'s command with `CancellationError` if it still waits.
    private func cancel(owner: UInt) {
        self.queue.takeContinuation(of: owner)?.resume(throwing: CancellationError())
    }

    /// Adds commands and their slots to the queue (encoding them there, under its lock, so
    /// they are never copied on their way) and schedules a write if none is pending; the error
    /// when the connection has ended, or `CancellationError` when the task was cancelled
    /// before its slot was queued (`missesBefore`: see ``exchange(commands:batch:extraTimeout:_:)``;
    /// `nil`, no check). With `commands == 0` the bytes go out with no slot (commands answered
    /// by pushes).
    private func enqueue(
        commands: Int, batch: Bool, continuation: UnsafeContinuation<RESPValue, any Error>?, owner: UInt,
        missesBefore: Int?, extraTimeout: TimeAmount, _ write: (inout ByteBuffer) -> Void
    ) -> (any Error)? {
        guard self.isOpen else {
            return RedisClientError(.connectionClosed, mayHaveRun: false, message: "the connection is closed")
        }
        if commands > 0 { self.counters.inFlight.add(commands, ordering: .relaxed) }
        enum Outcome {
            case queued(schedule: Bool)
            case ended(RedisClientError)
            case cancelled
        }
        let outcome = self.queue.state.withLock { state -> Outcome in
            if let failure = state.failure { return .ended(failure) }
            if let missesBefore, self.queue.missedCancellations.load(ordering: .relaxed) != missesBefore,
                Task.isCancelled
            {
                return .cancelled
            }
            write(&state.bytes)
            if commands > 0 {
                for _ in 1..<commands {
                    state.slots.append(
                        ReplySlot(continuation: nil, owner: owner, part: .batched, extraTimeout: .zero))
                }
                state.slots.append(
                    ReplySlot(
                        continuation: continuation, owner: owner, part: batch ? .batchEnd : .whole,
                        extraTimeout: extraTimeout))
            }
            if !state.scheduled {
                state.scheduled = true
                return .queued(schedule: true)
            }
            // Enough held back to be worth a write of their own.
            if state.heldBack && state.slots.count - state.written >= Self.holdAtMost {
                state.heldBack = false
                return .queued(schedule: true)
            }
            return .queued(schedule: false)
        }
        switch outcome {
        case .queued(let schedule):
            if schedule { self.channel.eventLoop.execute { self.drain(holding: true) } }
            return nil
        case .ended(let failure):
            if commands > 0 { self.counters.inFlight.subtract(commands, ordering: .relaxed) }
            return RedisClientError(failure.code, mayHaveRun: false, message: failure.message)
        case .cancelled:
            if commands > 0 { self.counters.inFlight.subtract(commands, ordering: .relaxed) }
            return CancellationError()
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
    /// The queue gets back the storage of the previous write, emptied, so commands queued
    /// meanwhile are encoded into room that is already there rather than into a new buffer
    /// grown a doubling at a time. If the previous write is still pending, `clear()` finds
    /// its storage shared and takes new storage of the same size; a buffer past
    /// `Self.keptOutboxBytes` is not kept.
    private func drain(holding: Bool) {
        let handler = self.handler.value
        var bytes = handler.spareOutbox ?? ByteBuffer()
        bytes.clear()
        handler.spareOutbox = nil
        let now = NIODeadline.now()
        let deadline = now + self.commandTimeout
        let firstDeadline = self.queue.state.withLock { state -> NIODeadline? in
            let unwritten = state.slots.count - state.written
            if holding && state.written >= Self.holdWhileReplyDue && unwritten > 0 && unwritten < Self.holdAtMost {
                state.heldBack = true
                return nil
            }
            state.scheduled = false
            state.heldBack = false
            swap(&bytes, &state.bytes)
            guard unwritten > 0 else { return nil }
            var index = state.slots.index(state.slots.startIndex, offsetBy: state.written)
            var first: NIODeadline?
            while index != state.slots.endIndex {
                let slotDeadline = deadline + state.slots[index].extraTimeout
                state.slots[index].deadline = slotDeadline
                first = first.map { min($0, slotDeadline) } ?? slotDeadline
                index = state.slots.index(after: index)
            }
            state.written = state.slots.count
            return first
        }
        defer {
            if bytes.capacity <= Self.keptOutboxBytes { handler.spareOutbox = bytes }
        }
        guard bytes.readableBytes > 0 else { return }
        self.counters.lastUsed.store(now.uptimeNanoseconds, ordering: .relaxed)
        if let firstDeadline { handler.commandsWritten(firstDeadline: firstDeadline) }
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
