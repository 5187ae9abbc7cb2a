import Logging
import NIOCore
import Synchronization

/// A connection the listener accepted, from its channel initializer until a task serves it.
///
/// A `NIOAsyncChannel` made with `wrappingChannelSynchronously` traps ("Deinited NIOAsyncWriter
/// without calling finish()") when its last reference goes before `executeThenClose` ran. NIO's
/// async listener can drop an accepted connection without handing it to the accept loop:
/// when the listener closes (graceful shutdown) while the connection's initializer is still
/// running on another event loop, the finished stream discards it (swift-nio#2813), and a
/// cancelled accept loop discards the connections still buffered. The process then crashed on
/// the event loop that activated the connection.
///
/// This box holds the channel until ``serve(_:)`` or ``close()`` runs `executeThenClose`. If it
/// is released before either, its `deinit` hands the channel to a task that finishes its writer
/// and closes it: the connection is closed unanswered, as one refused during shutdown is.
final class AcceptedConnection: Sendable {
    let asyncChannel: NIOAsyncChannel<ServerInboundPart, ServerOutboundPart>
    private let logger: Logger
    private let taken = Atomic<Bool>(false)

    init(_ asyncChannel: NIOAsyncChannel<ServerInboundPart, ServerOutboundPart>, logger: Logger) {
        self.asyncChannel = asyncChannel
        self.logger = logger
    }

    var channel: any Channel { self.asyncChannel.channel }

    /// Runs `body` with the connection's streams, then closes the connection.
    func serve<Result>(
        _ body: (NIOAsyncChannelInboundStream<ServerInboundPart>, NIOAsyncChannelOutboundWriter<ServerOutboundPart>)
            async throws -> Result
    ) async throws -> Result {
        self.taken.store(true, ordering: .relaxed)
        return try await self.asyncChannel.executeThenClose(body)
    }

    /// Closes the connection without serving it.
    func close() async {
        self.taken.store(true, ordering: .relaxed)
        try? await self.asyncChannel.executeThenClose { _, _ in }
    }

    deinit {
        guard !self.taken.load(ordering: .relaxed) else { return }
        self.logger.debug(
            "accepted connection released before it was served; closing it",
            metadata: ["remote": "\(self.asyncChannel.channel.remoteAddress.map { "\($0)" } ?? "?")"])
        let asyncChannel = self.asyncChannel
        Task { try? await asyncChannel.executeThenClose { _, _ in } }
    }
}
