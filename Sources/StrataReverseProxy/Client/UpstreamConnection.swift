import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if TLS
import NIOSSL
#endif

/// One keep-alive HTTP/1.1 connection to an upstream, held by one request at a time.
///
/// The pool hands it to a single holder; every call that touches the channel handler runs on the
/// connection's event loop (directly when the holder already runs there, as it does under the
/// server's event-loop executor).
final class UpstreamConnection: Sendable {
    let channel: any Channel
    let eventLoop: any EventLoop
    private let handler: NIOLoopBound<UpstreamChannelHandler>
    /// Set once the channel closed, before the pool hears of it.
    let isClosed = Atomic<Bool>(false)
    /// Requests this connection carried.
    let exchanges = Atomic<Int>(0)

    private init(channel: any Channel, handler: NIOLoopBound<UpstreamChannelHandler>) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = handler
    }

    /// Opens a connection on `eventLoop`.
    static func connect(
        to upstream: Upstream,
        eventLoop: any EventLoop,
        connectTimeout: TimeAmount,
        timeouts: UpstreamChannelHandler.Timeouts,
        limits: ResponseParserLimits,
        tls: UpstreamTLS?
    ) async throws -> UpstreamConnection {
        if upstream.usesTLS && tls == nil { throw UpstreamConnectError(underlying: UpstreamTLSUnavailableError()) }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    #if TLS
                    if upstream.usesTLS, let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls.context, serverHostname: upstream.tlsServerName))
                    }
                    #endif
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamChannelHandler(limits: limits, timeouts: timeouts))
                }
            }
        let channel: any Channel
        do {
            switch upstream.address {
            case .host(let host, let port):
                channel = try await bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch let error as ChannelError {
            if case .connectTimeout = error { throw UpstreamTimeoutError(kind: .connect) }
            throw UpstreamConnectError(underlying: error)
        } catch {
            throw UpstreamConnectError(underlying: error)
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: UpstreamChannelHandler.self),
                eventLoop: channel.eventLoop)
        }.get()
        let connection = UpstreamConnection(channel: channel, handler: handler)
        return connection
    }

    /// Runs `body` with the handler, on the event loop.
    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (UpstreamChannelHandler) -> T) async throws -> T {
        if self.eventLoop.inEventLoop { return body(self.handler.value) }
        return try await self.eventLoop.submit { body(self.handler.value) }.get()
    }

    /// Prepares the parser and the clocks for one request.
    func beginExchange(isHead: Bool, upgrades: Bool, total: TimeAmount?) async throws {
        self.exchanges.add(1, ordering: .relaxed)
        try await self.onLoop { $0.beginExchange(isHead: isHead, upgrades: upgrades, total: total) }
    }

    /// Writes and flushes `buffer`, returning once the socket took it (back-pressure).
    func write(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(buffer).get()
    }

    /// Writes and flushes `buffer` without waiting: a failure closes the channel, which the next
    /// read reports.
    func send(_ buffer: ByteBuffer) {
        self.channel.writeAndFlush(buffer, promise: nil)
    }

    /// The request's last byte was written.
    func requestEnded() async throws {
        try await self.onLoop { $0.requestEnded() }
    }

    /// The connection is a tunnel from now on.
    func startTunnel() async throws {
        try await self.onLoop { $0.startTunnel() }
    }

    /// The next part of the response (or tunnel); `nil` at the end of input.
    func next() async throws -> UpstreamPart? {
        if self.eventLoop.inEventLoop {
            let handler = self.handler.value
            if let polled = handler.poll() { return polled }
            guard let future = handler.next() else { throw UpstreamClosedError() }
            return try await future.get()
        }
        return try await self.eventLoop.flatSubmit {
            self.handler.value.next() ?? self.eventLoop.makeFailedFuture(UpstreamClosedError())
        }.get()
    }

    /// Marks the connection idle (its pool timer starts).
    func becameIdle() {
        if self.eventLoop.inEventLoop {
            self.handler.value.becameIdle()
        } else {
            self.eventLoop.execute { self.handler.value.becameIdle() }
        }
    }

    /// Half-closes the sending side (the end of a tunnel's client input).
    func shutdownOutput() {
        self.channel.close(mode: .output, promise: nil)
    }

    func close() {
        self.channel.close(promise: nil)
    }
}

/// The upstream could not be reached.
struct UpstreamConnectError: Error, CustomStringConvertible {
    var underlying: any Error
    var description: String { "could not connect to the upstream: \(self.underlying)" }
}
