#if Vapor
internal import HTTPTypes
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import Strata
internal import Vapor

/// Runs a Strata upgrade (a `101` with ``Strata/ConnectionUpgrade``) on a Vapor connection.
///
/// Vapor writes the 101 with the stack's header fields, removes its HTTP handlers and calls
/// ``StrataProtocolUpgrader/upgrade(context:upgradeRequest:)``, which puts the connection's bytes
/// in an `NIOAsyncChannel` and runs the upgrade on it. Bytes the client pipelined behind the
/// request are held by Vapor and delivered first.
struct StrataUpgrader: Vapor.Upgrader {
    let upgrade: ConnectionUpgrade
    let headers: HTTPHeaders
    let logger: Logger

    func applyUpgrade(req: Vapor.Request, res: Vapor.Response) -> any HTTPServerProtocolUpgrader {
        StrataProtocolUpgrader(
            upgrade: self.upgrade, headers: self.headers, logger: self.logger, remoteAddress: req.remoteAddress)
    }
}

/// The NIO side of ``StrataUpgrader``.
struct StrataProtocolUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let upgrade: ConnectionUpgrade
    let headers: HTTPHeaders
    let logger: Logger
    let remoteAddress: SocketAddress?

    // Vapor consults neither: the upgrade was decided by the Strata stack.
    var supportedProtocol: String { self.headers.first(name: .upgrade) ?? "" }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(
        channel: any Channel,
        upgradeRequest: HTTPRequestHead,
        initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        channel.eventLoop.makeSucceededFuture(self.headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        let asyncChannel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            asyncChannel = try NIOAsyncChannel(wrappingChannelSynchronously: channel)
        } catch {
            self.logger.error("could not take over the connection for the upgrade: \(error)")
            return channel.eventLoop.makeFailedFuture(error)
        }
        let (upgrade, logger, remoteAddress) = (self.upgrade, self.logger, self.remoteAddress)
        Task {
            do {
                try await asyncChannel.executeThenClose { inbound, outbound in
                    let connection = UpgradedConnection(
                        inbound: UpgradedConnection.Inbound(inbound),
                        outbound: AsyncChannelWriter(outbound: outbound),
                        logger: logger,
                        remoteAddress: remoteAddress
                    )
                    try await upgrade.run(connection)
                }
            } catch {
                logger.debug("upgraded connection ended with an error: \(error)")
            }
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}

/// The outbound half of an upgraded Vapor connection.
struct AsyncChannelWriter: UpgradedConnectionWriter {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    func write(_ buffer: ByteBuffer) async throws {
        try await self.outbound.write(buffer)
    }

    func write(contentsOf buffers: [ByteBuffer]) async throws {
        try await self.outbound.write(contentsOf: buffers)
    }

    func finish() {
        self.outbound.finish()
    }
}
#endif
