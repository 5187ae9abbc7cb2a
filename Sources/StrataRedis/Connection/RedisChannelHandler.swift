import Logging
import NIOCore

/// Reads replies and matches them, in order, to the commands written on the connection.
///
/// Runs on the connection's event loop only. A reply whose caller already gave up (timeout,
/// cancellation) is read and dropped, so the replies behind it stay matched. A reply that does
/// not parse closes the connection: nothing after it could be matched safely.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var parser: RESPParser
    /// Bytes received and not yet parsed.
    private var buffer = ByteBuffer()
    /// The reply slots of the commands written, in order, with when their callers give up.
    private var pending = CircularBuffer<(reply: PendingReply, deadline: NIODeadline)>(initialCapacity: 16)
    private let counters: ConnectionCounters
    private let commandTimeout: TimeAmount
    private let logger: Logger
    private var timer: Scheduled<Void>?
    private var lastRead = NIODeadline.now()
    private var context: ChannelHandlerContext?
    /// Why the connection ended, once it has.
    private(set) var failure: RedisClientError?
    /// Set on a subscriber connection: every reply and push goes here instead of to a command.
    var onPush: ((RESPValue) -> Void)?
    /// The connection's last written outbox and reply list, emptied and handed back to the
    /// outbox at the next write (see `RedisConnection.drain()`), kept here because this is
    /// the state its event loop owns.
    var spareOutbox: ByteBuffer?
    var spareReplies: CircularBuffer<(reply: PendingReply, extraTimeout: TimeAmount)>?
    /// Called after each read with the number of replies matched, and with 0 when the timer
    /// fires or the channel closes: the connection writes what waited meanwhile.
    var afterReplies: ((Int) -> Void)?
    /// Storage for the replies of one read between matching and resuming, kept between reads.
    private var spareAnswered: CircularBuffer<(reply: PendingReply, value: RESPValue)>?

    init(limits: RESPParserLimits, counters: ConnectionCounters, commandTimeout: TimeAmount, logger: Logger) {
        self.parser = RESPParser(limits: limits)
        self.counters = counters
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.timer?.cancel()
    }

    /// Replies still due: commands written and not answered (including those whose callers
    /// gave up, whose replies are read and dropped).
    var repliesDue: Int { self.pending.count }

    /// Queues the reply slot of a command just written (calls come in the order of writing).
    func expect(_ reply: consuming PendingReply, deadline: NIODeadline) {
        self.pending.append((reply, deadline))
        if self.timer == nil, let context = self.context { self.armTimer(context: context, at: deadline) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        self.lastRead = .now()
        if self.buffer.readableBytes == 0 {
            self.buffer = bytes
        } else {
            var bytes = bytes
            self.buffer.writeBuffer(&bytes)
        }
        // The replies of this read are matched first, counted as answered, and only then handed
        // to their callers: a caller resumed here may send its next command at once, and the
        // pool must not count this one as still in flight then (with 800 callers the count
        // ran past `pipelineDepthToGrow` and opened connections no one needed).
        var answered = self.spareAnswered.take() ?? CircularBuffer(initialCapacity: 64)
        var failure: RedisClientError?
        do {
            while let value = try self.parser.next(from: &self.buffer) {
                if let onPush = self.onPush {
                    onPush(value)
                    continue
                }
                if case .push = value {
                    self.logger.debug("dropping a RESP3 push on a command connection")
                    continue
                }
                guard let (reply, _) = self.pending.popFirst() else {
                    failure = RedisClientError(
                        .protocolViolation, mayHaveRun: true, message: "a reply came that no command asked for")
                    break
                }
                answered.append((reply, value))
            }
        } catch {
            self.logger.warning("closing a Redis connection on a malformed reply", metadata: ["error": "\(error)"])
            failure = RedisClientError(.protocolViolation, mayHaveRun: true, message: "\(error)")
        }
        let delivered = answered.count
        if delivered > 0 { self.counters.answered(delivered) }
        while let (reply, value) = answered.popFirst() { reply.resume(.success(value)) }
        self.spareAnswered = answered
        if let failure {
            self.fail(context: context, failure)
            return
        }
        if self.buffer.readableBytes > 0 && self.buffer.readerIndex > 64 * 1024 { self.buffer.discardReadBytes() }
        if delivered > 0 { self.afterReplies?(delivered) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        let failure =
            self.failure ?? RedisClientError(.connectionClosed, mayHaveRun: true, message: "the connection closed")
        self.failure = failure
        self.failAll(failure)
        self.counters.closed()
        self.afterReplies?(0)
        self.afterReplies = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(context: context, RedisClientError(.connectionClosed, mayHaveRun: true, message: "\(error)"))
    }

    private func fail(context: ChannelHandlerContext, _ error: RedisClientError) {
        if self.failure == nil { self.failure = error }
        self.failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        // Counted before the callers resume, as for replies.
        if !self.pending.isEmpty { self.counters.answered(self.pending.count) }
        while let (reply, _) = self.pending.popFirst() { reply.resume(.failure(error)) }
    }

    private func armTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timerFired(context: context)
        }
    }

    /// Answers the callers whose deadline passed (their replies will still be read and
    /// dropped), and closes a connection whose oldest reply is a whole timeout overdue with
    /// nothing read meanwhile: a server that accepts and never answers.
    private func timerFired(context: ChannelHandlerContext) {
        self.timer = nil
        // Commands held back behind a reply that is late go out now, each with its own deadline.
        self.afterReplies?(0)
        let now = NIODeadline.now()
        var next: NIODeadline?
        for (reply, deadline) in self.pending {
            if deadline <= now {
                if reply.resume(
                    .failure(
                        RedisClientError(
                            .commandTimeout, mayHaveRun: true, message: "no reply within the command timeout")))
                {
                    self.counters.timedOut()
                }
            } else {
                next = deadline
                break
            }
        }
        if let oldest = self.pending.first {
            let unresponsiveAt = oldest.deadline + self.commandTimeout
            if unresponsiveAt <= now && self.lastRead < oldest.deadline {
                self.logger.warning("closing an unresponsive Redis connection")
                self.fail(
                    context: context,
                    RedisClientError(
                        .connectionClosed, mayHaveRun: true, message: "the server stopped answering"))
                return
            }
            next = min(next ?? unresponsiveAt, unresponsiveAt)
        }
        if let next { self.armTimer(context: context, at: next) }
    }
}
