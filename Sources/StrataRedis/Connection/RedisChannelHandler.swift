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
    /// The connection's commands, queued and written (shared with the callers).
    let queue: CommandQueue
    private let counters: ConnectionCounters
    private let commandTimeout: TimeAmount
    private let logger: Logger
    private var timer: Scheduled<Void>?
    private var lastRead = NIODeadline.now()
    private var context: ChannelHandlerContext?
    /// Set on a subscriber connection: every reply and push goes here instead of to a command.
    var onPush: ((RESPValue) -> Void)?
    /// The connection's last written outbox, emptied and handed back to the queue at the next
    /// write (see `RedisConnection.drain()`), kept here because this is the state its event
    /// loop owns.
    var spareOutbox: ByteBuffer?
    /// Called after each read with the number of replies matched, and with 0 when the timer
    /// fires or the channel closes: the connection writes what waited meanwhile.
    var afterReplies: ((Int) -> Void)?
    /// The replies of one read, parsed before their slots are taken (kept between reads).
    private var values = CircularBuffer<RESPValue>(initialCapacity: 64)
    /// Their slots, taken from the queue under one lock (kept between reads).
    private var matched: [ReplySlot] = []
    /// The replies of a batch so far, until its last one comes.
    private var batchValues: [RESPValue] = []

    init(
        queue: CommandQueue, limits: RESPParserLimits, counters: ConnectionCounters, commandTimeout: TimeAmount,
        logger: Logger
    ) {
        self.queue = queue
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

    /// Arms the timeout timer for commands just written, unless it is armed already.
    func commandsWritten(firstDeadline: NIODeadline) {
        if self.timer == nil, let context = self.context { self.armTimer(context: context, at: firstDeadline) }
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
                self.values.append(value)
            }
        } catch {
            self.logger.warning("closing a Redis connection on a malformed reply", metadata: ["error": "\(error)"])
            failure = RedisClientError(.protocolViolation, mayHaveRun: true, message: "\(error)")
        }
        // The replies of this read take their slots first, are counted as answered, and only
        // then go to their callers: a caller resumed here may send its next command at once,
        // and the pool must not count this one as still in flight then (with 800 callers the
        // count ran past `pipelineDepthToGrow` and opened connections no one needed).
        let delivered = self.values.count
        if delivered > 0 {
            if self.queue.match(delivered, into: &self.matched) {
                self.counters.answered(delivered)
                self.deliver()
            } else {
                self.values.removeAll(keepingCapacity: true)
                failure = RedisClientError(
                    .protocolViolation, mayHaveRun: true, message: "a reply came that no command asked for")
            }
        }
        if let failure {
            self.fail(context: context, failure)
            return
        }
        if self.buffer.readableBytes > 0 && self.buffer.readerIndex > 64 * 1024 { self.buffer.discardReadBytes() }
        if delivered > 0 { self.afterReplies?(delivered) }
    }

    /// Hands each parsed reply to its slot's caller, in order.
    private func deliver() {
        for slot in self.matched {
            guard let value = self.values.popFirst() else { break }
            switch slot.part {
            case .whole:
                slot.continuation?.resume(returning: value)
            case .batched:
                self.batchValues.append(value)
            case .batchEnd:
                self.batchValues.append(value)
                let values = self.batchValues
                self.batchValues.removeAll(keepingCapacity: true)
                slot.continuation?.resume(returning: .array(values))
            }
        }
        self.matched.removeAll(keepingCapacity: true)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.failAll(RedisClientError(.connectionClosed, mayHaveRun: true, message: "the connection closed"))
        self.counters.closed()
        self.afterReplies?(0)
        self.afterReplies = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(context: context, RedisClientError(.connectionClosed, mayHaveRun: true, message: "\(error)"))
    }

    private func fail(context: ChannelHandlerContext, _ error: RedisClientError) {
        self.failAll(error)
        context.close(promise: nil)
    }

    /// Fails every unanswered command (the first failure is the one kept): those written may
    /// have run, those still queued did not.
    private func failAll(_ error: RedisClientError) {
        let (count, waiting) = self.queue.fail(error)
        self.batchValues.removeAll()
        // Counted before the callers resume, as for replies.
        if count > 0 { self.counters.answered(count) }
        for (continuation, written) in waiting {
            continuation.resume(
                throwing: written ? error : RedisClientError(error.code, mayHaveRun: false, message: error.message))
        }
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
        var expired: [UnsafeContinuation<RESPValue, any Error>] = []
        let (next, oldest) = self.queue.expire(now: now, into: &expired)
        for continuation in expired {
            self.counters.timedOut()
            continuation.resume(
                throwing: RedisClientError(
                    .commandTimeout, mayHaveRun: true, message: "no reply within the command timeout"))
        }
        var rearm = next
        if let oldest {
            let unresponsiveAt = oldest + self.commandTimeout
            if unresponsiveAt <= now && self.lastRead < oldest {
                self.logger.warning("closing an unresponsive Redis connection")
                self.fail(
                    context: context,
                    RedisClientError(.connectionClosed, mayHaveRun: true, message: "the server stopped answering"))
                return
            }
            rearm = min(rearm ?? unresponsiveAt, unresponsiveAt)
        }
        if let rearm { self.armTimer(context: context, at: rearm) }
    }
}
