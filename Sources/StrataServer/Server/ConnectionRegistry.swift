import NIOCore
import Synchronization

/// The server's open connections, so graceful shutdown can reach each one.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    private let state = Mutex(State())

    /// Whether graceful shutdown has begun: responses then carry `Connection: close`.
    var isQuiescing: Bool { self.state.withLock { $0.quiescing } }

    /// Adds `channel`; returns `false` (and the caller closes it) when shutdown has begun.
    func add(_ channel: any Channel) -> Bool {
        self.state.withLock { state in
            guard !state.quiescing else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) {
        _ = self.state.withLock { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Starts graceful shutdown: idle connections close now, busy ones after their response.
    func quiesce() {
        let channels = self.state.withLock { state in
            state.quiescing = true
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Closes every connection still open.
    func closeAll() {
        let channels = self.state.withLock { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }
}
