// The floor of any reverse proxy built on SwiftNIO, for `scripts/bench-proxy.sh`: a TCP
// forwarder that gives each client connection its own upstream connection, opened on the
// client's event loop, and copies bytes both ways from channel handlers (no HTTP parsing, no
// Swift concurrency, no pool). Every byte costs what NIO's read and write paths cost and
// nothing else, so an HTTP proxy on NIO cannot beat it.
//
//   ProxyFloor --listen 127.0.0.1:18196 --upstream 127.0.0.1:18190
//
// With `--hello` it is instead the floor of an HTTP server on NIO: NIOHTTP1's decoder and
// encoder and a handler answering every request with 13 bytes, which HelloExample (StrataServer)
// does through Swift concurrency.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One side of a client/upstream pair: what it reads, its partner writes.
final class Glue: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: Glue?
    private var context: ChannelHandlerContext?
    private var readPending = false

    static func pair() -> (Glue, Glue) {
        let first = Glue()
        let second = Glue()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { self.context?.write(data, promise: nil) }
    private func partnerFlush() { self.context?.flush() }
    private func partnerClose() { self.context?.close(promise: nil) }
    private var partnerWritable: Bool { self.context?.channel.isWritable ?? false }
    private func partnerBecameWritable() {
        if self.readPending {
            self.readPending = false
            self.context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { self.partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { self.partner?.partnerClose() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if self.partner?.partnerWritable ?? false {
            context.read()
        } else {
            self.readPending = true
        }
    }
}

/// Answers every request with "Hello, World!", keep-alive.
final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body = ByteBuffer(string: "Hello, World!")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = self.unwrapInboundIn(data) else { return }
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "Content-Length", value: "13")
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(self.body))), promise: nil)
        context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func hostPort(_ text: String) -> (String, Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
    return (String(text[..<colon]), port)
}

guard let (listenHost, listenPort) = hostPort(option("--listen") ?? "127.0.0.1:18196"),
    let (upstreamHost, upstreamPort) = hostPort(option("--upstream") ?? "127.0.0.1:18190")
else {
    print("usage: ProxyFloor --listen HOST:PORT --upstream HOST:PORT")
    exit(2)
}

let group = MultiThreadedEventLoopGroup.singleton
if CommandLine.arguments.contains("--hello") {
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(HelloHandler())
            }
        }
        .bind(host: listenHost, port: listenPort).get()
    print("ProxyFloor --hello on \(listenHost):\(listenPort)")
    try await server.closeFuture.get()
    exit(0)
}
let server = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        ClientBootstrap(group: channel.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: upstreamHost, port: upstreamPort)
            .flatMapThrowing { upstream in
                let (client, server) = Glue.pair()
                try channel.pipeline.syncOperations.addHandler(client)
                try upstream.pipeline.syncOperations.addHandler(server)
            }
    }
    .bind(host: listenHost, port: listenPort).get()
print("ProxyFloor on \(listenHost):\(listenPort) -> \(upstreamHost):\(upstreamPort)")
try await server.closeFuture.get()
