import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if TLS
import NIOSSL
#endif

/// A scripted upstream on a real socket: it records every byte each connection sent and answers
/// with whatever the script returns, so tests can send what no real server would (broken
/// framing, nothing at all) and check what reached the upstream.
final class RawUpstream: Sendable {
    /// What to do after reading bytes on a connection.
    enum Action: Sendable {
        /// Wait for more bytes.
        case wait
        /// Write these bytes and keep the connection.
        case reply(String)
        /// Write these bytes and close.
        case replyAndClose(String)
        /// Never answer.
        case hang
        /// Close at once.
        case close
    }

    /// Given a connection's bytes so far (the text since its last answer) and the connection's
    /// number, what to do.
    typealias Script = @Sendable (_ pending: String, _ connection: Int) -> Action

    let port: Int
    private let channel: any Channel
    private let box: StateBox

    struct State {
        var connections = 0
        var received: [String] = []
        var answered = 0
        var closed = 0
        var children: [any Channel] = []
    }

    /// Connections that have closed.
    var closedConnections: Int { self.box.state.withLock { $0.closed } }

    /// Answers written so far.
    var answered: Int { self.box.state.withLock { $0.answered } }

    /// Connections accepted so far.
    var connections: Int { self.box.state.withLock { $0.connections } }
    /// Everything each connection sent, in order of connection.
    var received: [String] { self.box.state.withLock { $0.received } }
    /// Every byte any connection sent.
    var allReceived: String { self.received.joined() }

    private init(channel: any Channel, box: StateBox) throws {
        self.channel = channel
        self.box = box
        guard let port = channel.localAddress?.port else { throw RawUpstreamError() }
        self.port = port
    }

    static func start(port: Int = 0, tls: TLSServerContext? = nil, _ script: @escaping Script) async throws
        -> RawUpstream
    {
        let box = StateBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let number = box.state.withLock { state -> Int in
                        state.connections += 1
                        state.received.append("")
                        state.children.append(channel)
                        return state.connections
                    }
                    #if TLS
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    #endif
                    try channel.pipeline.syncOperations.addHandler(
                        Handler(number: number, script: script, box: box))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        let upstream = try RawUpstream(channel: channel, box: box)
        return upstream
    }

    func stop() async {
        try? await self.channel.close()
    }

    /// Stops listening and closes every connection, as a crashed server would.
    func kill() async {
        try? await self.channel.close()
        let children = self.box.state.withLock { $0.children }
        for child in children { try? await child.close() }
    }

    /// Shares the state between the listener and its connections.
    final class StateBox: Sendable {
        let state = Mutex(State())
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let number: Int
        let script: Script
        let box: StateBox
        var pending = ""
        var hanging = false

        init(number: Int, script: @escaping Script, box: StateBox) {
            self.number = number
            self.script = script
            self.box = box
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.box.state.withLock { $0.closed += 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            let text = String(buffer: buffer)
            self.box.state.withLock { $0.received[self.number - 1] += text }
            guard !self.hanging else { return }
            self.pending += text
            switch self.script(self.pending, self.number) {
            case .wait:
                break
            case .reply(let answer):
                self.pending = ""
                self.box.state.withLock { $0.answered += 1 }
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
            case .replyAndClose(let answer):
                self.pending = ""
                self.box.state.withLock { $0.answered += 1 }
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            case .hang:
                self.hanging = true
            case .close:
                context.close(promise: nil)
            }
        }
    }
}

struct RawUpstreamError: Error {}

extension String {
    /// Whether this holds a whole request head (and `Content-Length` bytes of body).
    var hasCompleteRequest: Bool {
        guard let range = self.range(of: "\r\n\r\n") else { return false }
        let head = self[..<range.lowerBound].lowercased()
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        {
            return self.utf8.count - self[..<range.upperBound].utf8.count >= length
        }
        if head.contains("transfer-encoding: chunked") { return self.hasSuffix("0\r\n\r\n") }
        return true
    }
}

extension RawUpstream {
    /// An upstream answering every request `200 ok`, keeping the connection.
    static func healthy(port: Int = 0, body: String = "ok") async throws -> RawUpstream {
        try await RawUpstream.start(port: port) { pending, _ in
            pending.hasCompleteRequest
                ? .reply("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)") : .wait
        }
    }
}

/// The certificate and key a TLS test upstream serves; empty without the `TLS` trait.
struct TLSServerContext: Sendable {
    #if TLS
    let context: NIOSSLContext
    #endif
}
