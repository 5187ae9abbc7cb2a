public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
public import Strata

/// A small, fast HTTP/1.1 server on SwiftNIO that runs a Strata responder.
///
/// It is a swift-service-lifecycle `Service`: run it in a `ServiceGroup` and a graceful shutdown
/// stops accepting, lets in-flight requests finish within ``HTTPServerConfiguration/shutdownTimeout``,
/// and closes idle keep-alive connections at once.
///
/// ```swift
/// let router = Router<BasicContext>()
/// router.get("/") { _, _ in ServerResponse(status: .ok, body: .init(string: "Hello")) }
/// let server = HTTPServer(responder: router, configuration: try .init(port: 8080), logger: logger)
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
public struct HTTPServer<Responder: HTTPResponder>: Service where Responder.Context: ServerContext {
    /// What answers requests.
    public let responder: Responder
    /// Where to listen, and the limits.
    public let configuration: HTTPServerConfiguration
    /// The server's logger; connections log through it.
    public let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let onServerRunning: (@Sendable (SocketAddress) async -> Void)?

    /// Creates a server.
    ///
    /// - Parameters:
    ///   - responder: What answers requests: a router, or a middleware stack around one.
    ///   - configuration: Where to listen, and the limits.
    ///   - logger: The server's logger.
    ///   - eventLoopGroup: The NIO threads to run on; by default ``HTTPServerEventLoops/group``, one
    ///     loop per CPU the process may run on (NIO's shared singleton unless the process is
    ///     pinned to fewer CPUs than the machine has).
    ///   - onServerRunning: Called with the bound address once the server listens (useful with port 0).
    public init(
        responder: Responder,
        configuration: HTTPServerConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = HTTPServerEventLoops.group,
        onServerRunning: (@Sendable (SocketAddress) async -> Void)? = nil
    ) {
        self.responder = responder
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.onServerRunning = onServerRunning
    }

    /// Binds and serves until the task is cancelled or a graceful shutdown completes.
    public func run() async throws {
        try self.configuration.validate()
        let registry = ConnectionRegistry()
        let configuration = self.configuration
        let logger = self.logger
        let serverChannel = try await ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: Int32(configuration.backlog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client's FIN ends its sending, not the exchange (RFC 9112 §9.6): the requests
            // that arrived before it are still answered, then the connection closes.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configurePipeline(channel: channel, configuration: configuration, logger: logger)
                    return AcceptedConnection(
                        try NIOAsyncChannel<ServerInboundPart, ServerOutboundPart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        ),
                        logger: logger
                    )
                }
            }
        if let address = serverChannel.channel.localAddress {
            logger.info("server listening", metadata: ["address": "\(address)"])
            await self.onServerRunning?(address)
        }

        let (shutdownStarted, shutdownContinuation) = AsyncStream.makeStream(of: Void.self)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Bool.self) { tasks in
                tasks.addTask {
                    await withDiscardingTaskGroup { connections in
                        do {
                            try await serverChannel.executeThenClose { inbound in
                                for try await connection in inbound {
                                    connections.addTask {
                                        await self.serve(connection, registry: registry)
                                    }
                                }
                            }
                        } catch {
                            logger.error("server stopped accepting connections", metadata: ["error": "\(error)"])
                        }
                    }
                    return true
                }
                tasks.addTask {
                    // The deadline for in-flight requests starts with graceful shutdown.
                    for await _ in shutdownStarted { break }
                    guard !Task.isCancelled else { return true }
                    try? await Task.sleep(for: configuration.shutdownTimeout)
                    return Task.isCancelled
                }
                if await tasks.next() == false {
                    logger.warning("shutdown deadline passed; closing connections still in flight")
                    registry.closeAll()
                }
                // Either every connection is done and the timer is no longer needed, or the
                // deadline passed and the handlers still running are cancelled.
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            logger.info("graceful shutdown: no new connections, finishing in-flight requests")
            serverChannel.channel.close(promise: nil)
            registry.quiesce()
            shutdownContinuation.yield()
        }
        shutdownContinuation.finish()
        logger.info("server stopped")
    }

    private func serve(
        _ connection: AcceptedConnection,
        registry: ConnectionRegistry
    ) async {
        let channel = connection.channel
        guard registry.add(channel) else {
            // Accepted as shutdown began: closed unanswered, like one the closed listener refuses.
            await connection.close()
            return
        }
        defer { registry.remove(channel) }
        let source = ContextSource(
            logger: self.logger,
            remoteAddress: channel.remoteAddress,
            localAddress: channel.localAddress
        )
        do {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
                try await withTaskCancellationHandler {
                    try await connection.serve { inbound, outbound in
                        let reader = ConnectionReader(iterator: inbound.makeAsyncIterator(), outbound: outbound)
                        let informational = InformationalWriter(outbound: outbound)
                        var source = source
                        source.informationalResponses = informational
                        await HTTPConnection(
                            responder: self.responder,
                            configuration: self.configuration,
                            registry: registry,
                            channel: channel,
                            reader: reader,
                            outbound: outbound,
                            informational: informational,
                            source: source
                        ).run()
                    }
                } onCancel: {
                    channel.close(promise: nil)
                }
            }
        } catch {
            self.logger.debug("connection closed with an error", metadata: ["error": "\(error)"])
        }
    }

    static func configurePipeline(
        channel: any Channel,
        configuration: HTTPServerConfiguration,
        logger: Logger
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = configuration.maxRequestHeadSize
        limits.maxHeaderFieldSize = configuration.maxRequestHeadSize
        limits.maxHeaderFieldCount = configuration.maxHeaderCount
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(
            ConnectionGuard(
                headTimeout: configuration.requestHeadTimeout,
                bodyTimeout: configuration.requestBodyTimeout,
                idleTimeout: configuration.idleTimeout,
                logger: logger
            ),
            name: PipelineNames.connectionGuard
        )
        try pipeline.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)),
            name: PipelineNames.decoder
        )
        try pipeline.addHandler(ServerCodec(), name: PipelineNames.codec)
    }
}
