import CoreMetrics
import NIOCore
import Synchronization

/// The keep-alive connections to one upstream, kept per event loop.
///
/// A request takes an idle connection on its own event loop first (no thread hop), then opens a
/// new one while the upstream is under its connection limit, then takes an idle one from another
/// loop, and else waits for one to come back, up to the connect timeout. Idle connections close
/// after the pool's idle timeout (the connection's own timer) or when the upstream closes them.
final class UpstreamPool: Sendable {
    struct Settings: Sendable {
        var maxConnections: Int
        var connectTimeout: TimeAmount
        var handlerTimeouts: UpstreamChannelHandler.Timeouts
        var limits: ResponseParserLimits
        /// For `https://` upstreams (the `TLS` trait).
        var tls: UpstreamTLS? = nil
    }

    private enum Grant {
        case connection(UpstreamConnection)
        case slot
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [ObjectIdentifier: [UpstreamConnection]] = [:]
        var open = 0
        var opened = 0
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var shutdown = false
    }

    let upstream: Upstream
    let settings: Settings
    private let state = Mutex(State())
    /// Open connections, recorded when one opens or closes (never per request).
    private let openGauge: Gauge

    init(upstream: Upstream, settings: Settings) {
        self.upstream = upstream
        self.settings = settings
        self.openGauge = Gauge(
            label: "strata_proxy_pool_connections", dimensions: [("upstream", upstream.description)])
    }

    private func recordOpen() {
        self.openGauge.record(self.state.withLock { $0.open })
    }

    /// Open connections, idle ones included.
    var openConnections: Int { self.state.withLock { $0.open } }
    /// Connections opened since the pool was made.
    var openedConnections: Int { self.state.withLock { $0.opened } }
    /// Idle connections.
    var idleConnections: Int { self.state.withLock { $0.idle.values.reduce(0) { $0 + $1.count } } }

    /// A connection for one exchange, and whether it carried requests before.
    func acquire(on eventLoop: any EventLoop) async throws -> (UpstreamConnection, reused: Bool) {
        enum Step {
            case reuse(UpstreamConnection)
            case open
            case wait
            case closed
        }
        let key = ObjectIdentifier(eventLoop)
        let step = self.state.withLock { state -> Step in
            if state.shutdown { return .closed }
            if let connection = Self.popIdle(&state, key: key) { return .reuse(connection) }
            if state.open < self.settings.maxConnections {
                state.open += 1
                state.opened += 1
                return .open
            }
            for other in state.idle.keys where other != key {
                if let connection = Self.popIdle(&state, key: other) { return .reuse(connection) }
            }
            return .wait
        }
        switch step {
        case .reuse(let connection):
            return (connection, true)
        case .open:
            return (try await self.open(on: eventLoop), false)
        case .closed:
            throw UpstreamClosedError()
        case .wait:
            switch try await self.wait(on: eventLoop) {
            case .connection(let connection): return (connection, true)
            case .slot: return (try await self.open(on: eventLoop), false)
            }
        }
    }

    /// Takes the newest live idle connection of `key`'s loop; closed ones found on the way are
    /// dropped (and uncounted here, since their close handler will no longer find them idle).
    private static func popIdle(_ state: inout State, key: ObjectIdentifier) -> UpstreamConnection? {
        while let connection = state.idle[key]?.popLast() {
            if !connection.isClosed.load(ordering: .acquiring) { return connection }
            state.open -= 1
        }
        return nil
    }

    private func open(on eventLoop: any EventLoop) async throws -> UpstreamConnection {
        do {
            let connection = try await UpstreamConnection.connect(
                to: self.upstream,
                eventLoop: eventLoop,
                connectTimeout: self.settings.connectTimeout,
                timeouts: self.settings.handlerTimeouts,
                limits: self.settings.limits,
                tls: self.settings.tls
            )
            connection.channel.closeFuture.whenComplete { [weak self] _ in
                connection.isClosed.store(true, ordering: .releasing)
                self?.closed(connection)
                self?.recordOpen()
            }
            self.recordOpen()
            return connection
        } catch {
            self.slotFreed()
            throw error
        }
    }

    /// Gives a connection back: kept when `reusable` and still open, else closed.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        enum Outcome {
            case pooled
            case handed(CheckedContinuation<Grant, any Error>)
            case dropped(CheckedContinuation<Grant, any Error>?)
        }
        let outcome = self.state.withLock { state -> Outcome in
            if !reusable || state.shutdown || connection.isClosed.load(ordering: .acquiring) {
                state.open -= 1
                if !state.waiters.isEmpty, !state.shutdown {
                    state.open += 1
                    state.opened += 1
                    return .dropped(state.waiters.removeFirst().continuation)
                }
                return .dropped(nil)
            }
            if !state.waiters.isEmpty { return .handed(state.waiters.removeFirst().continuation) }
            state.idle[ObjectIdentifier(connection.eventLoop), default: []].append(connection)
            return .pooled
        }
        switch outcome {
        case .pooled:
            connection.becameIdle()
        case .handed(let waiter):
            waiter.resume(returning: .connection(connection))
        case .dropped(let waiter):
            connection.close()
            waiter?.resume(returning: .slot)
        }
    }

    /// A channel closed: if it was idle, it leaves the pool.
    private func closed(_ connection: UpstreamConnection) {
        let key = ObjectIdentifier(connection.eventLoop)
        let wasIdle = self.state.withLock { state -> Bool in
            guard let index = state.idle[key]?.firstIndex(where: { $0 === connection }) else { return false }
            state.idle[key]?.remove(at: index)
            state.open -= 1
            return true
        }
        if wasIdle { self.wakeForSlot() }
    }

    private func slotFreed() {
        self.state.withLock { $0.open -= 1 }
        self.wakeForSlot()
    }

    /// Lets one waiter open a connection in a freed slot.
    private func wakeForSlot() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard !state.waiters.isEmpty, state.open < self.settings.maxConnections, !state.shutdown else { return nil }
            state.open += 1
            state.opened += 1
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .slot)
    }

    private func wait(on eventLoop: any EventLoop) async throws -> Grant {
        let id = self.state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withCheckedThrowingContinuation { continuation in
            let enqueued = self.state.withLock { state -> Bool in
                guard !state.shutdown else { return false }
                state.waiters.append(Waiter(id: id, continuation: continuation))
                return true
            }
            guard enqueued else {
                continuation.resume(throwing: UpstreamClosedError())
                return
            }
            // Fires after the waiter is queued; harmless once it was served.
            eventLoop.scheduleTask(in: self.settings.connectTimeout) { [weak self] in
                self?.timeOut(waiter: id)
            }
        }
    }

    private func timeOut(waiter id: Int) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(throwing: UpstreamPoolExhaustedError(limit: self.settings.maxConnections))
    }

    /// Closes every idle connection and refuses new ones; connections in use close when released.
    func shutdown() {
        let (idle, waiters) = self.state.withLock { state in
            state.shutdown = true
            let idle = state.idle.values.flatMap { $0 }
            state.idle = [:]
            state.open -= idle.count
            let waiters = state.waiters
            state.waiters = []
            return (idle, waiters)
        }
        for connection in idle { connection.close() }
        for waiter in waiters { waiter.continuation.resume(throwing: UpstreamClosedError()) }
    }
}

/// Every connection to the upstream was in use for the whole connect timeout.
struct UpstreamPoolExhaustedError: Error, CustomStringConvertible {
    var limit: Int
    var description: String { "all \(self.limit) connections to the upstream stayed busy" }
}
