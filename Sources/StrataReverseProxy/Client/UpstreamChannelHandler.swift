import HTTPTypes
import NIOCore

/// Why an upstream exchange timed out.
struct UpstreamTimeoutError: Error, CustomStringConvertible {
    enum Kind: String, Sendable {
        case connect
        case responseHead = "response head"
        case idle = "idle between bytes"
        case total
    }
    var kind: Kind
    var description: String { "upstream timed out: \(self.kind.rawValue)" }
}

/// The connection closed or failed while idle or between reads.
struct UpstreamClosedError: Error, CustomStringConvertible {
    var description: String { "the upstream connection closed" }
}

/// One upstream connection's pipeline end: parses responses, queues their parts for the one task
/// that holds the connection, holds reads back while that queue is full (back-pressure), and
/// enforces the response-head, idle and total timeouts with one coarse timer.
///
/// The channel reads on its own (`autoRead`) as long as the queue is short, so a small response
/// costs no change of the socket's event registration; only a holder slower than its upstream
/// makes it stop reading.
///
/// Runs on the channel's event loop only; ``UpstreamConnection`` reaches it there.
final class UpstreamChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Parts queued beyond which reading stops until the holder catches up.
    private static let maxQueuedParts = 4

    struct Timeouts {
        var responseHead: TimeAmount
        var idle: TimeAmount
        var tick: TimeAmount
        var poolIdle: TimeAmount
    }

    private var parser: ResponseParser
    private var buffer: ByteBuffer?
    private var parts = CircularBuffer<UpstreamPart>(initialCapacity: 4)
    private var waiter: EventLoopPromise<UpstreamPart?>?
    private var failure: (any Error)?
    private var inputEnded = false
    /// A read the channel asked for and that was held back while the queue was full.
    private var readHeld = false
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private let timeouts: Timeouts

    /// When the request ended; the response head must come within `responseHead` of it.
    private var headDeadline: NIODeadline?
    /// The exchange's total deadline.
    private var totalDeadline: NIODeadline?
    /// Since when a read has been waited for with the queue empty (the idle timeout's clock).
    private var starvedSince: NIODeadline?
    /// When the connection last went back to the pool; `nil` while in use.
    private var idleSince: NIODeadline? = .now()
    /// Raw tunnels count their own idle time.
    private var tunnelling = false

    init(limits: ResponseParserLimits, timeouts: Timeouts) {
        self.parser = ResponseParser(limits: limits)
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The timer holds the handler until `handlerRemoved` cancels it (the channel closed).
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleRepeatedTask(initialDelay: self.timeouts.tick, delay: self.timeouts.tick)
        {
            _ in
            handler.value.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
    }

    // MARK: - The holder's side

    /// A request is about to be written.
    func beginExchange(isHead: Bool, upgrades: Bool, total: TimeAmount?) {
        self.parser.expectResponse(isHead: isHead, upgrades: upgrades)
        self.idleSince = nil
        self.headDeadline = nil
        self.totalDeadline = total.map { .now() + $0 }
        self.starvedSince = nil
    }

    /// The request's last byte was written: the response head is now awaited.
    func requestEnded() {
        if self.headDeadline == nil, self.parser.isAwaitingHead {
            self.headDeadline = .now() + self.timeouts.responseHead
        }
    }

    /// The exchange ended and the connection is going back to the pool.
    func becameIdle() {
        self.idleSince = .now()
        self.headDeadline = nil
        self.totalDeadline = nil
        self.starvedSince = nil
        self.releaseHeldRead()
    }

    /// Stops the per-exchange clocks: the connection is a tunnel now, timed by its owner.
    func startTunnel() {
        self.tunnelling = true
        self.headDeadline = nil
        self.totalDeadline = nil
    }

    /// The next part, at once when one is queued.
    func next() -> EventLoopFuture<UpstreamPart?>? {
        if let part = self.parts.popFirst() {
            self.releaseHeldRead()
            return self.completed(part)
        }
        if let failure = self.failure { return self.context?.eventLoop.makeFailedFuture(failure) }
        if self.inputEnded { return self.completed(nil) }
        guard let context = self.context else { return nil }
        let promise = context.eventLoop.makePromise(of: UpstreamPart?.self)
        self.waiter = promise
        self.starvedSince = .now()
        self.releaseHeldRead()
        return promise.futureResult
    }

    /// A queued part without waiting: `.some(part)` or `.some(nil)` at the end of input; `nil`
    /// when the caller must wait.
    func poll() -> UpstreamPart?? {
        if let part = self.parts.popFirst() {
            self.releaseHeldRead()
            return .some(part)
        }
        if self.failure == nil && self.inputEnded { return .some(nil) }
        return nil
    }

    private func completed(_ part: UpstreamPart?) -> EventLoopFuture<UpstreamPart?>? {
        self.context?.eventLoop.makeSucceededFuture(part)
    }

    // MARK: - Reading

    /// Lets a held read go once the queue is short again.
    private func releaseHeldRead() {
        guard self.readHeld, self.parts.count < Self.maxQueuedParts, let context = self.context else { return }
        self.readHeld = false
        context.read()
    }

    func read(context: ChannelHandlerContext) {
        if self.parts.count >= Self.maxQueuedParts {
            self.readHeld = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.starvedSince = nil
        if var buffer = self.buffer, buffer.readableBytes > 0 {
            self.buffer = nil
            buffer.writeBuffer(&bytes)
            bytes = buffer
        }
        do {
            try self.parser.parse(&bytes, into: &self.parts)
            self.buffer = bytes.readableBytes > 0 ? bytes : nil
            if let buffer = self.buffer, buffer.readerIndex > 64 * 1024 {
                self.buffer?.discardReadBytes()
            }
        } catch {
            // What parsed before the error still goes out, then the error.
            self.fail(error, context: context)
            return
        }
        if self.parser.isAwaitingHead == false { self.headDeadline = nil }
        self.deliver()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.endOfInput(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.endOfInput(context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error, context: context)
    }

    private func endOfInput(context: ChannelHandlerContext) {
        guard !self.inputEnded, self.failure == nil else { return }
        do {
            var bytes = self.buffer ?? ByteBuffer()
            self.buffer = nil
            if bytes.readableBytes > 0 { try self.parser.parse(&bytes, into: &self.parts) }
            try self.parser.endOfInput(into: &self.parts)
        } catch {
            self.fail(error, context: context)
            return
        }
        self.inputEnded = true
        self.deliver()
        if self.parts.isEmpty, self.idleSince != nil || !self.tunnelling {
            context.close(promise: nil)
        }
    }

    private func deliver() {
        guard let waiter = self.waiter else {
            // Nobody waits: bytes while idle are a protocol error caught by the parser.
            return
        }
        if let part = self.parts.popFirst() {
            self.waiter = nil
            waiter.succeed(part)
            self.releaseHeldRead()
        } else if let failure = self.failure {
            self.waiter = nil
            waiter.fail(failure)
        } else if self.inputEnded {
            self.waiter = nil
            waiter.succeed(nil)
        }
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        guard self.failure == nil else { return }
        self.failure = error
        self.buffer = nil
        self.deliver()
        context.close(promise: nil)
    }

    // MARK: - Time

    private func tick() {
        guard let context = self.context, self.failure == nil else { return }
        let now = NIODeadline.now()
        if let idleSince = self.idleSince {
            if now - idleSince >= self.timeouts.poolIdle { context.close(promise: nil) }
            return
        }
        if self.tunnelling { return }
        if let totalDeadline = self.totalDeadline, now >= totalDeadline {
            self.fail(UpstreamTimeoutError(kind: .total), context: context)
        } else if let headDeadline = self.headDeadline, now >= headDeadline {
            self.fail(UpstreamTimeoutError(kind: .responseHead), context: context)
        } else if self.headDeadline == nil, !self.parser.isAwaitingHead, self.waiter != nil,
            let starvedSince = self.starvedSince, now - starvedSince >= self.timeouts.idle
        {
            self.fail(UpstreamTimeoutError(kind: .idle), context: context)
        }
    }
}

extension ResponseParser {
    var isAwaitingHead: Bool {
        if case .head = self.state { return true }
        return false
    }
}
