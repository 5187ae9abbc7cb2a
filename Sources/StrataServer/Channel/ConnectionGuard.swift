import Logging
import NIOCore

/// Enforces the connection's timeouts and graceful-shutdown rules from the front of the pipeline.
///
/// It sees raw bytes before the parser, and hears from ``ServerCodec`` (through outbound user
/// events) when a request head arrives, its body ends, and its response completes. One timer
/// per connection is kept and moved lazily, so a keep-alive request costs a clock read, not a
/// timer allocation.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let headTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let logger: Logger

    /// Requests whose head arrived and whose response has not completed.
    private var pending = 0
    private var bodyEnded = true
    /// Bytes of a request head arrived while no request was pending.
    private var readingHead = true
    private var headDeadline: NIODeadline
    private var idleDeadline: NIODeadline
    private var bodyDeadline: NIODeadline?
    private var upgraded = false
    /// A request that asks to upgrade awaits its answer. NIO's parser drops the bytes it holds
    /// behind such a request once it has seen the end of input, so the client's FIN is held
    /// here, in front of the parser, until the answer: a refusal passes it on, and an upgrade
    /// delivers it after the held bytes (``releaseHeldInputClosed()``).
    private var upgradePending = false
    private var heldInputClosed: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(headTimeout: Duration, bodyTimeout: Duration, idleTimeout: Duration, logger: Logger) {
        self.headTimeout = TimeAmount(headTimeout)
        self.bodyTimeout = TimeAmount(bodyTimeout)
        self.idleTimeout = TimeAmount(idleTimeout)
        self.logger = logger
        let now = NIODeadline.now()
        self.headDeadline = now + self.headTimeout
        self.idleDeadline = now + self.idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.rearm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.headDeadline = .now() + self.headTimeout
        self.rearm(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.heldInputClosed = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !self.upgraded {
            if self.pending == 0 && !self.readingHead {
                self.readingHead = true
                self.headDeadline = .now() + self.headTimeout
                self.rearm(context: context)
            } else if self.pending > 0 {
                self.bodyDeadline = nil
            }
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if !self.upgraded && self.pending > 0 && !self.bodyEnded && self.bodyDeadline == nil {
            self.bodyDeadline = .now() + self.bodyTimeout
            self.rearm(context: context)
        }
        context.read()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? ConnectionEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .headReceived:
            self.pending += 1
            self.bodyEnded = false
            self.readingHead = false
            self.bodyDeadline = nil
        case .bodyEnded:
            self.bodyEnded = true
            self.bodyDeadline = nil
        case .responseCompleted:
            self.pending = max(0, self.pending - 1)
            if self.pending == 0 {
                self.idleDeadline = .now() + self.idleTimeout
                self.rearm(context: context)
            }
        case .upgradeRequested:
            self.upgradePending = true
        case .upgradeRefused:
            self.upgradePending = false
            self.releaseHeldInputClosed()
        case .upgraded:
            self.upgraded = true
            self.upgradePending = false
            self.timer?.cancel()
            self.timer = nil
        }
        promise?.succeed()
    }

    /// Passes on a FIN held while an upgrade was pending.
    func releaseHeldInputClosed() {
        guard let context = self.heldInputClosed else { return }
        self.heldInputClosed = nil
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, self.upgradePending {
            self.heldInputClosed = context
            return
        }
        // An idle connection closes now; a busy one is answered with `Connection: close` by the
        // connection task, which then closes it after the response is flushed.
        if event is ChannelShouldQuiesceEvent, !self.upgraded, self.pending == 0, !self.readingHead {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The deadline in force now, and what expires at it.
    private func currentDeadline() -> (NIODeadline, Expiry)? {
        if self.upgraded { return nil }
        if self.pending == 0 {
            return self.readingHead ? (self.headDeadline, .head) : (self.idleDeadline, .idle)
        }
        if !self.bodyEnded, let bodyDeadline = self.bodyDeadline { return (bodyDeadline, .body) }
        return nil
    }

    private enum Expiry {
        case head, idle, body
    }

    /// Makes sure a timer fires no later than the current deadline.
    private func rearm(context: ChannelHandlerContext) {
        guard let (deadline, _) = self.currentDeadline() else { return }
        if let timerDeadline = self.timerDeadline, self.timer != nil, timerDeadline <= deadline { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        self.timer = nil
        self.timerDeadline = nil
        guard let (deadline, expiry) = self.currentDeadline() else { return }
        guard deadline <= .now() else {
            self.rearm(context: context)
            return
        }
        switch expiry {
        case .head:
            self.logger.info("request head not received in time; answering 408 and closing")
            var buffer = context.channel.allocator.buffer(capacity: 96)
            buffer.writeStaticString("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        case .idle:
            self.logger.debug("keep-alive connection idle; closing")
            context.close(promise: nil)
        case .body:
            self.logger.info("request body stalled; closing the connection")
            context.close(promise: nil)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
