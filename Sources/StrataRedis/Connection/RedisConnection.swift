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
    let endpoint: RedisConfiguration.Endpoint
    let counters: ConnectionCounters
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let commandTimeout: TimeAmount
    private let outbox = Mutex<Outbox>(Outbox())
    /// Set once the handshake chose RESP3.
    let protocolVersion = Atomic<UInt8>(2)

    private struct Outbox {
        var commands: [(command: RedisCommand, reply: PendingReply?)] = []
        var scheduled = false
    }

    private init(
        channel: any Channel,
        endpoint: RedisConfiguration.Endpoint,
        counters: ConnectionCounters,
        handler: NIOLoopBound<RedisChannelHandler>,
        commandTimeout: TimeAmount
    ) {
        self.channel = channel
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
        return RedisConnection(
            channel: channel, endpoint: endpoint, counters: counters, handler: handler, commandTimeout: commandTimeout)
    }

    /// Whether the connection is still open.
    var isOpen: Bool { !self.counters.isClosed.load(ordering: .relaxed) }

    /// Sends one command and waits for its reply.
    ///
    /// - Parameter extraTimeout: added to the command timeout (blocking commands).
    func send(_ command: RedisCommand, extraTimeout: TimeAmount = .zero) async throws -> RESPValue {
        let reply = PendingReply(deadline: .now() + self.commandTimeout + extraTimeout)
        try self.enqueue(CollectionOfOne((command, reply)))
        return try await reply.value()
    }

    /// Sends commands back to back, nothing else between them, and waits for every reply
    /// (`ASKING` + command, `MULTI` … `EXEC`).
    func send(batch commands: [RedisCommand]) async throws -> [RESPValue] {
        let deadline = NIODeadline.now() + self.commandTimeout
        let replies = commands.map { _ in PendingReply(deadline: deadline) }
        try self.enqueue(zip(commands, replies).map { ($0, $1) })
        var values: [RESPValue] = []
        values.reserveCapacity(replies.count)
        for reply in replies { values.append(try await reply.value()) }
        return values
    }

    /// Writes commands whose answers come as pushes (`SUBSCRIBE` on a subscriber connection).
    func write(_ command: RedisCommand) throws {
        try self.enqueue(CollectionOfOne((command, nil)))
    }

    private func enqueue(_ items: some Collection<(RedisCommand, PendingReply?)>) throws {
        guard self.isOpen else {
            throw RedisClientError(.connectionClosed, mayHaveRun: false, message: "the connection is closed")
        }
        self.counters.inFlight.add(items.reduce(0) { $0 + ($1.1 == nil ? 0 : 1) }, ordering: .relaxed)
        self.counters.lastUsed.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        let schedule = self.outbox.withLock { outbox -> Bool in
            for item in items { outbox.commands.append((item.0, item.1)) }
            guard !outbox.scheduled else { return false }
            outbox.scheduled = true
            return true
        }
        if schedule {
            self.channel.eventLoop.execute { self.drain() }
        }
    }

    /// On the event loop: writes everything queued in one write and one flush.
    private func drain() {
        var commands: [(command: RedisCommand, reply: PendingReply?)] = []
        commands.reserveCapacity(16)
        self.outbox.withLock { outbox in
            outbox.scheduled = false
            swap(&commands, &outbox.commands)
        }
        guard !commands.isEmpty else { return }
        let handler = self.handler.value
        if let failure = handler.failure {
            var failed = 0
            for (_, reply) in commands where reply != nil {
                reply?.resume(.failure(RedisClientError(failure.code, mayHaveRun: false, message: failure.message)))
                failed += 1
            }
            if failed > 0 { self.counters.answered(failed) }
            return
        }
        var buffer = self.channel.allocator.buffer(capacity: commands.reduce(0) { $0 + $1.command.encodedSize })
        for index in commands.indices {
            commands[index].command.write(into: &buffer)
            if let reply = commands[index].reply { handler.expect(reply) }
        }
        self.channel.writeAndFlush(buffer, promise: nil)
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
