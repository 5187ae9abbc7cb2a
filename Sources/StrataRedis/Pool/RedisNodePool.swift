import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The connections to one server: shared, pipelined connections for ordinary commands, and
/// dedicated ones leased whole (transactions, blocking commands, subscriptions).
///
/// Bounded everywhere: at most ``RedisConfiguration/maxConnections`` of each kind, at most
/// ``RedisConfiguration/maxPipelinedCommands`` unanswered per connection, at most
/// ``RedisConfiguration/maxWaiters`` commands waiting, each for at most
/// ``RedisConfiguration/acquireTimeout``. After a failed connect, new commands fail at once
/// with the failure until the next attempt, which comes after an exponential, jittered delay.
///
/// **Event-loop affinity.** A command sent from a task running on one of the group's event
/// loops (a Strata handler, any NIO server's handler) goes to a shared connection on that same
/// loop when there is one with room, and the pool opens one there (within `maxConnections`)
/// when there is none: the command is written, its reply read and its caller resumed on one
/// thread, with no hop between threads. Other callers take the least loaded connection.
///
/// **Lifetime.** The connections' hooks and the idle sweep hold the pool strongly, not weakly:
/// a weak reference gives an object a side table, and every retain and release of the pool
/// (several per command) then takes the slow path. The cycle (pool, connection, hooks) ends at
/// ``beginShutdown()`` and ``closeAll()``, which the client runs when it shuts down or is
/// released.
final class RedisNodePool: Sendable {
    let endpoint: RedisConfiguration.Endpoint
    private let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    /// The group's loops, to recognise a caller running on one of them.
    private let groupLoops: [ObjectIdentifier]
    private let logger: Logger
    private let metrics: RedisMetrics
    private let state = Mutex<State>(State())
    /// Read on every reply batch, so a pool with no waiters costs one atomic load.
    private let waiterCount = Atomic<Int>(0)

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<RedisConnection?, any Error>
        var timeout: Scheduled<Void>?
    }

    private struct State {
        var shared: [RedisConnection] = []
        var sharedConnecting = 0
        /// The loops a shared connection is being opened on, for a caller there.
        var connectingOnLoops: [ObjectIdentifier] = []
        var sharedWaiters = CircularBuffer<Waiter>()
        var dedicatedIdle: [RedisConnection] = []
        var dedicatedCount = 0
        var dedicatedWaiters = CircularBuffer<Waiter>()
        var nextWaiterID = 0
        var lastFailure: RedisClientError?
        var failedAttempts = 0
        var retryAt: NIODeadline?
        var reconnectScheduled = false
        var hadConnection = false
        var shutdown = false
        var idleSweep: RepeatedTask?
    }

    init(
        endpoint: RedisConfiguration.Endpoint,
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metrics: RedisMetrics
    ) {
        self.endpoint = endpoint
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.groupLoops = eventLoopGroup.makeIterator().map { ObjectIdentifier($0) }
        var logger = logger
        logger[metadataKey: "redis.node"] = "\(endpoint)"
        self.logger = logger
        self.metrics = metrics
        let sweepEvery = TimeAmount(max(configuration.idleTimeout / 4, .milliseconds(100)))
        let sweep = eventLoopGroup.next().scheduleRepeatedTask(initialDelay: sweepEvery, delay: sweepEvery) {
            _ in self.closeIdleConnections()
        }
        self.state.withLock { $0.idleSweep = sweep }
    }

    // MARK: Shared connections

    /// A shared connection with room for one more command: one on the caller's event loop when
    /// the caller runs on one of the group's, else the least loaded.
    func connection() async throws -> RedisConnection {
        if let connection = try self.connectionWithoutWaiting() { return connection }
        return try await self.waitForConnection()
    }

    /// Waits, within the acquire timeout, for a shared connection with room (after
    /// ``connectionWithoutWaiting()`` found none).
    func waitForConnection() async throws -> RedisConnection {
        // One deadline for the whole wait, however often the waiter is woken to look again.
        let deadline = NIODeadline.now() + TimeAmount(self.configuration.acquireTimeout)
        while true {
            if let connection = try await self.wait(dedicated: false, until: deadline), connection.isOpen {
                return connection
            }
            // Woken with room somewhere: look again.
            if let connection = self.leastLoaded() { return connection }
        }
    }

    /// A shared connection with room, or `nil` when the caller has to wait for one (the
    /// synchronous part of ``connection()``, so a command that finds room does not suspend).
    func connectionWithoutWaiting() throws -> RedisConnection? {
        enum Decision {
            case use(RedisConnection)
            case fail(RedisClientError)
            case wait
        }
        let callerLoop = self.callerLoop()
        var connectOn: (any EventLoop)?
        let decision = self.state.withLock { state -> Decision in
            if state.shutdown { return .fail(Self.shutdownError) }
            let depthToGrow = min(self.configuration.pipelineDepthToGrow, self.configuration.maxPipelinedCommands)
            // Positions, not references, while scanning: one retain for the connection taken
            // rather than one per connection looked at.
            var bestIndex: Int?
            var bestLoad = Int.max
            var localIndex: Int?
            var localLoad = Int.max
            let callerLoopID = callerLoop.map(ObjectIdentifier.init)
            for index in state.shared.indices where state.shared[index].isOpen {
                let load = state.shared[index].counters.inFlight.load(ordering: .relaxed)
                if load < bestLoad {
                    bestIndex = index
                    bestLoad = load
                }
                if let callerLoopID, state.shared[index].eventLoopID == callerLoopID, load < localLoad {
                    localIndex = index
                    localLoad = load
                }
                // Nothing beats an idle connection the caller would take anyway: with many
                // shallow connections (no pipelining) the scan stops at the first one.
                if load == 0, callerLoopID == nil || localIndex == index { break }
            }
            let best = bestIndex.map { state.shared[$0] }
            let local = localIndex.map { state.shared[$0] }
            if let local, localLoad < depthToGrow { return .use(local) }
            // One connection carries the pipeline until it is this deep: bigger batches cost
            // both sides fewer system calls, so more connections only help past that depth.
            if callerLoop == nil, let best, bestLoad < depthToGrow { return .use(best) }
            let inBackoff = state.retryAt.map { NIODeadline.now() < $0 } ?? false
            if state.shared.count + state.sharedConnecting < self.configuration.maxConnections && !inBackoff {
                if let callerLoop {
                    // A connection of this loop's own (another, past `pipelineDepthToGrow`),
                    // unless one is on its way.
                    if !state.connectingOnLoops.contains(ObjectIdentifier(callerLoop)) {
                        state.connectingOnLoops.append(ObjectIdentifier(callerLoop))
                        state.sharedConnecting += 1
                        connectOn = callerLoop
                    }
                } else if state.sharedConnecting == 0 {
                    // One connect at a time: the callers that find none open wait for it
                    // rather than each opening one (a burst at start-up opened them all).
                    state.sharedConnecting += 1
                    connectOn = self.eventLoopGroup.next()
                }
            }
            if let local, localLoad < self.configuration.maxPipelinedCommands { return .use(local) }
            if let best, bestLoad < self.configuration.maxPipelinedCommands { return .use(best) }
            if best == nil && state.sharedConnecting == 0, let failure = state.lastFailure {
                return .fail(failure)
            }
            return .wait
        }
        if let connectOn { self.openShared(on: connectOn) }
        switch decision {
        case .use(let connection): return connection
        case .fail(let error): throw error
        case .wait: return nil
        }
    }

    /// The group's event loop the caller runs on, if it runs on one.
    private func callerLoop() -> (any EventLoop)? {
        guard let current = MultiThreadedEventLoopGroup.currentEventLoop,
            self.groupLoops.contains(ObjectIdentifier(current))
        else { return nil }
        return current
    }

    private func leastLoaded() -> RedisConnection? {
        self.state.withLock { state in
            state.shared.filter(\.isOpen).min {
                $0.counters.inFlight.load(ordering: .relaxed) < $1.counters.inFlight.load(ordering: .relaxed)
            }.flatMap {
                $0.counters.inFlight.load(ordering: .relaxed) < self.configuration.maxPipelinedCommands ? $0 : nil
            }
        }
    }

    private func openShared(on eventLoop: any EventLoop) {
        Task {
            do {
                let connection = try await self.open(dedicated: false, on: eventLoop)
                let waiters = self.state.withLock { state -> [Waiter] in
                    state.sharedConnecting -= 1
                    state.connectingOnLoops.removeAll { $0 == ObjectIdentifier(eventLoop) }
                    if state.shutdown { return [] }
                    state.shared.append(connection)
                    return Self.takeAll(&state.sharedWaiters)
                }
                self.waiterCount.subtract(waiters.count, ordering: .relaxed)
                if self.state.withLock({ $0.shutdown }) { connection.close() }
                for waiter in waiters {
                    waiter.timeout?.cancel()
                    waiter.continuation.resume(returning: connection)
                }
            } catch {
                let waiters = self.state.withLock { state -> [Waiter] in
                    state.sharedConnecting -= 1
                    state.connectingOnLoops.removeAll { $0 == ObjectIdentifier(eventLoop) }
                    guard state.shared.allSatisfy({ !$0.isOpen }) && state.sharedConnecting == 0 else { return [] }
                    return Self.takeAll(&state.sharedWaiters)
                }
                self.waiterCount.subtract(waiters.count, ordering: .relaxed)
                let failure = Self.connectFailure(error)
                for waiter in waiters {
                    waiter.timeout?.cancel()
                    waiter.continuation.resume(throwing: failure)
                }
            }
        }
    }

    /// Called by a connection's handler after it delivered replies: wakes waiters if any.
    private func slotsFreed() {
        guard self.waiterCount.load(ordering: .relaxed) > 0 else { return }
        let waiters = self.state.withLock { state -> [Waiter] in
            let room = state.shared.filter(\.isOpen).reduce(0) {
                $0 + max(0, self.configuration.maxPipelinedCommands - $1.counters.inFlight.load(ordering: .relaxed))
            }
            var woken: [Waiter] = []
            while woken.count < room, let waiter = state.sharedWaiters.popFirst() { woken.append(waiter) }
            return woken
        }
        guard !waiters.isEmpty else { return }
        self.waiterCount.subtract(waiters.count, ordering: .relaxed)
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(returning: nil)
        }
    }

    // MARK: Dedicated connections

    /// Leases a connection for the caller alone; give it back with ``release(_:reusable:)``.
    func leaseDedicated() async throws -> RedisConnection {
        enum Decision {
            case use(RedisConnection)
            case open
            case fail(RedisClientError)
            case wait
        }
        let deadline = NIODeadline.now() + TimeAmount(self.configuration.acquireTimeout)
        while true {
            let decision = self.state.withLock { state -> Decision in
                if state.shutdown { return .fail(Self.shutdownError) }
                while let idle = state.dedicatedIdle.popLast() {
                    if idle.isOpen { return .use(idle) }
                    state.dedicatedCount -= 1
                }
                if state.dedicatedCount < self.configuration.maxConnections {
                    state.dedicatedCount += 1
                    return .open
                }
                return .wait
            }
            switch decision {
            case .use(let connection): return connection
            case .fail(let error): throw error
            case .open:
                do {
                    return try await self.open(dedicated: true)
                } catch {
                    self.state.withLock { $0.dedicatedCount -= 1 }
                    throw Self.connectFailure(error)
                }
            case .wait:
                if let connection = try await self.wait(dedicated: true, until: deadline) {
                    if connection.isOpen { return connection }
                    self.state.withLock { $0.dedicatedCount -= 1 }
                }
            }
        }
    }

    /// Returns a leased connection. One that may be out of step (a command cancelled or
    /// timed out, a subscription) is closed rather than reused.
    func release(_ connection: RedisConnection, reusable: Bool) {
        let keep = reusable && connection.isOpen && connection.counters.inFlight.load(ordering: .relaxed) == 0
        let waiter = self.state.withLock { state -> Waiter? in
            if !keep || state.shutdown {
                state.dedicatedCount -= 1
                // A slot freed: the next waiter may open a connection of its own.
                if let waiter = state.dedicatedWaiters.popFirst() {
                    state.dedicatedCount += 1
                    return waiter
                }
                return nil
            }
            if let waiter = state.dedicatedWaiters.popFirst() { return waiter }
            state.dedicatedIdle.append(connection)
            return nil
        }
        if !keep { connection.close() }
        guard let waiter else { return }
        waiter.timeout?.cancel()
        if keep {
            waiter.continuation.resume(returning: connection)
        } else {
            // Its slot is reserved (counted above); it opens the connection itself.
            Task {
                do {
                    waiter.continuation.resume(returning: try await self.open(dedicated: true))
                } catch {
                    self.state.withLock { $0.dedicatedCount -= 1 }
                    waiter.continuation.resume(throwing: Self.connectFailure(error))
                }
            }
        }
    }

    // MARK: Waiting

    /// Waits for a connection or for room (`nil`), bounded in number and by `deadline`.
    private func wait(dedicated: Bool, until deadline: NIODeadline) async throws -> RedisConnection? {
        enum Registration {
            case waiting
            case refused(RedisClientError)
            /// Room appeared between the caller's decision and now: look again at once (a
            /// connection opened or released in between wakes no one later).
            case lookAgain
        }
        let eventLoop = self.eventLoopGroup.next()
        return try await withCheckedThrowingContinuation { continuation in
            let registration = self.state.withLock { state -> Registration in
                if state.shutdown { return .refused(Self.shutdownError) }
                if dedicated {
                    if !state.dedicatedIdle.isEmpty || state.dedicatedCount < self.configuration.maxConnections {
                        return .lookAgain
                    }
                } else if state.shared.contains(where: {
                    $0.isOpen
                        && $0.counters.inFlight.load(ordering: .relaxed) < self.configuration.maxPipelinedCommands
                }) {
                    return .lookAgain
                }
                let queued = state.sharedWaiters.count + state.dedicatedWaiters.count
                guard queued < self.configuration.maxWaiters else {
                    return .refused(
                        RedisClientError(
                            .poolExhausted, mayHaveRun: false,
                            message: "\(queued) commands already wait for a connection (maxWaiters)"))
                }
                state.nextWaiterID += 1
                let id = state.nextWaiterID
                let timer = eventLoop.scheduleTask(deadline: deadline) {
                    self.timeOut(waiter: id, dedicated: dedicated)
                }
                let waiter = Waiter(id: id, continuation: continuation, timeout: timer)
                if dedicated {
                    state.dedicatedWaiters.append(waiter)
                } else {
                    state.sharedWaiters.append(waiter)
                    // Counted under the lock, so a reply batch that frees room sees the waiter.
                    self.waiterCount.add(1, ordering: .relaxed)
                }
                return .waiting
            }
            switch registration {
            case .waiting: break
            case .refused(let error): continuation.resume(throwing: error)
            case .lookAgain: continuation.resume(returning: nil)
            }
        }
    }

    private func timeOut(waiter id: Int, dedicated: Bool) {
        let waiter = self.state.withLock { state -> Waiter? in
            if dedicated {
                guard let index = state.dedicatedWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.dedicatedWaiters.remove(at: index)
            }
            guard let index = state.sharedWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.sharedWaiters.remove(at: index)
        }
        guard let waiter else { return }
        if !dedicated { self.waiterCount.subtract(1, ordering: .relaxed) }
        self.metrics.poolTimeouts.increment()
        waiter.continuation.resume(
            throwing: RedisClientError(
                .poolExhausted, mayHaveRun: false, message: "no connection free within the acquire timeout"))
    }

    private static func takeAll(_ waiters: inout CircularBuffer<Waiter>) -> [Waiter] {
        var all: [Waiter] = []
        while let waiter = waiters.popFirst() { all.append(waiter) }
        return all
    }

    // MARK: Opening and closing

    /// Connects and runs the handshake, within the connect timeout plus one command timeout.
    private func open(dedicated: Bool, on eventLoop: (any EventLoop)? = nil) async throws -> RedisConnection {
        let counters = ConnectionCounters(
            onAnswered: { self.slotsFreed() },
            onClosed: { self.connectionClosed() },
            onTimeout: { [metrics = self.metrics] in metrics.commandTimeouts.increment() }
        )
        do {
            let connection = try await RedisConnection.connect(
                to: self.endpoint, configuration: self.configuration,
                eventLoop: eventLoop ?? self.eventLoopGroup.next(),
                counters: counters, logger: self.logger)
            do {
                try await RedisHandshake.run(on: connection, configuration: self.configuration)
            } catch {
                connection.close()
                throw error
            }
            let reconnected = self.state.withLock { state -> Bool in
                defer {
                    state.hadConnection = true
                    state.lastFailure = nil
                    state.failedAttempts = 0
                    state.retryAt = nil
                }
                return state.hadConnection && (state.lastFailure != nil || !dedicated)
            }
            self.metrics.connectionsOpened(dedicated: dedicated)
            if reconnected && !dedicated {
                self.metrics.reconnects.increment()
                self.logger.debug("reconnected to Redis")
            }
            return connection
        } catch {
            let failure = Self.connectFailure(error)
            let delay = self.state.withLock { state -> TimeAmount in
                state.failedAttempts += 1
                state.lastFailure = failure
                let delay = self.backoff(attempt: state.failedAttempts)
                state.retryAt = .now() + delay
                return delay
            }
            self.logger.debug(
                "Redis connect failed",
                metadata: ["error": "\(failure.message)", "retry_in_ms": "\(delay.nanoseconds / 1_000_000)"])
            self.metrics.connectFailures.increment()
            self.scheduleReconnect(after: delay)
            throw failure
        }
    }

    /// Exponential backoff with jitter: half to all of `base × 2^(attempt-1)`, capped.
    private func backoff(attempt: Int) -> TimeAmount {
        let base = Double(TimeAmount(self.configuration.reconnectDelay).nanoseconds)
        let cap = Double(TimeAmount(self.configuration.maxReconnectDelay).nanoseconds)
        let raw = min(cap, base * pow2(min(attempt - 1, 30)))
        return .nanoseconds(Int64(raw * Double.random(in: 0.5...1.0)))
    }

    private func pow2(_ exponent: Int) -> Double { Double(1 << exponent) }

    /// Keeps `minConnections` open: after a close or a failed connect, tries again later.
    private func scheduleReconnect(after delay: TimeAmount) {
        let schedule = self.state.withLock { state -> Bool in
            guard !state.shutdown, !state.reconnectScheduled,
                state.shared.filter(\.isOpen).count + state.sharedConnecting < self.configuration.minConnections
            else { return false }
            state.reconnectScheduled = true
            return true
        }
        guard schedule else { return }
        self.eventLoopGroup.next().scheduleTask(in: delay) {
            let start = self.state.withLock { state -> Bool in
                state.reconnectScheduled = false
                guard !state.shutdown,
                    state.shared.filter(\.isOpen).count + state.sharedConnecting < self.configuration.minConnections
                else { return false }
                state.sharedConnecting += 1
                return true
            }
            if start { self.openShared(on: self.eventLoopGroup.next()) }
        }
    }

    private func connectionClosed() {
        let (lost, dedicatedLost) = self.state.withLock { state -> (Int, Int) in
            let before = state.shared.count
            state.shared.removeAll { !$0.isOpen }
            let idleBefore = state.dedicatedIdle.count
            state.dedicatedIdle.removeAll { !$0.isOpen }
            state.dedicatedCount -= idleBefore - state.dedicatedIdle.count
            return (before - state.shared.count, idleBefore - state.dedicatedIdle.count)
        }
        if lost + dedicatedLost > 0 { self.logger.debug("Redis connection closed") }
        self.metrics.connectionsClosed(shared: lost, dedicated: dedicatedLost)
        if lost > 0 { self.scheduleReconnect(after: self.backoff(attempt: 1)) }
    }

    private func closeIdleConnections() {
        let now = NIODeadline.now().uptimeNanoseconds
        let idleFor = UInt64(TimeAmount(self.configuration.idleTimeout).nanoseconds)
        let idle = self.state.withLock { state -> [RedisConnection] in
            var closing: [RedisConnection] = []
            var open = state.shared.filter(\.isOpen)
            while open.count > self.configuration.minConnections,
                let index = open.firstIndex(where: {
                    $0.counters.inFlight.load(ordering: .relaxed) == 0
                        && now &- $0.counters.lastUsed.load(ordering: .relaxed) >= idleFor
                })
            {
                closing.append(open.remove(at: index))
            }
            state.shared = open
            let (stale, fresh) = state.dedicatedIdle.reduce(into: ([RedisConnection](), [RedisConnection]())) {
                if now &- $1.counters.lastUsed.load(ordering: .relaxed) >= idleFor {
                    $0.0.append($1)
                } else {
                    $0.1.append($1)
                }
            }
            state.dedicatedIdle = fresh
            state.dedicatedCount -= stale.count
            return closing + stale
        }
        for connection in idle { connection.close() }
    }

    // MARK: State for metrics and shutdown

    /// Commands handed to this node's connections and not yet answered.
    var commandsInFlight: Int {
        self.state.withLock { state in
            state.shared.reduce(0) { $0 + $1.counters.inFlight.load(ordering: .relaxed) }
        }
    }

    /// (open shared connections, dedicated connections, waiters).
    var sizes: (shared: Int, dedicated: Int, waiters: Int) {
        self.state.withLock { state in
            (
                state.shared.filter(\.isOpen).count, state.dedicatedCount,
                state.sharedWaiters.count + state.dedicatedWaiters.count
            )
        }
    }

    /// Stops handing out connections and fails the waiters; ``closeAll()`` closes.
    func beginShutdown() {
        let (waiters, sweep) = self.state.withLock { state -> ([Waiter], RepeatedTask?) in
            state.shutdown = true
            return (Self.takeAll(&state.sharedWaiters) + Self.takeAll(&state.dedicatedWaiters), state.idleSweep)
        }
        sweep?.cancel()
        self.waiterCount.store(0, ordering: .relaxed)
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(throwing: Self.shutdownError)
        }
    }

    func closeAll() {
        let connections = self.state.withLock { state in
            defer {
                state.shared = []
                state.dedicatedIdle = []
            }
            return state.shared + state.dedicatedIdle
        }
        for connection in connections { connection.close() }
    }

    static let shutdownError = RedisClientError(.shutdown, mayHaveRun: false, message: "the client is shut down")

    private static func connectFailure(_ error: any Error) -> RedisClientError {
        if let error = error as? RedisClientError {
            return error.code == .connectionFailed
                ? error : RedisClientError(.connectionFailed, mayHaveRun: false, message: error.message)
        }
        return RedisClientError(.connectionFailed, mayHaveRun: false, message: "\(error)")
    }
}
