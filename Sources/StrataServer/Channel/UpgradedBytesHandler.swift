import NIOCore

/// Replaces the HTTP handlers after a `101 Switching Protocols`: raw bytes in and out.
final class UpgradedBytesHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ServerInboundPart
    typealias OutboundIn = ServerOutboundPart
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(self.wrapInboundOut(.raw(self.unwrapInboundIn(data))))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .raw(let buffer), .body(let buffer):
            context.write(self.wrapOutboundOut(buffer), promise: promise)
        case .head, .end, .whole:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
