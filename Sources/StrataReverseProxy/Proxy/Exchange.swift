import Logging
import NIOCore
import Strata
import Synchronization

/// One attempt's hold on an upstream: its connection, its share of the node's load, and the
/// health record. Released once; a lease dropped without release (a response body nobody wrote)
/// closes its connection rather than leaking it.
final class Lease: Sendable {
    let node: UpstreamNode
    private struct State {
        var connection: UpstreamConnection
        var upload: Upload?
        var recorded = false
        var finished = false
    }
    private let state: Mutex<State>
    private let admission: Admission

    init(node: UpstreamNode, connection: UpstreamConnection, admission: Admission) {
        self.node = node
        self.admission = admission
        self.state = Mutex(State(connection: connection))
    }

    var connection: UpstreamConnection { self.state.withLock { $0.connection } }

    var upload: Upload? {
        get { self.state.withLock { $0.upload } }
        set { self.state.withLock { $0.upload = newValue } }
    }

    /// Swaps a stale connection for a fresh one (the stale one was already given back).
    func replaceConnection(_ connection: UpstreamConnection) {
        self.state.withLock {
            $0.connection = connection
            $0.finished = false
        }
        self.node.active.add(1, ordering: .relaxed)
    }

    /// Records the attempt's outcome for health, once.
    func record(_ outcome: AttemptOutcome) {
        let first = self.state.withLock { state -> Bool in
            defer { state.recorded = true }
            return !state.recorded
        }
        if first { self.node.record(outcome, admission: self.admission, now: .now()) }
    }

    /// Gives the connection back: to the pool when `reusable` and the request body went out
    /// whole, else closed.
    func finish(reusable: Bool) {
        let taken = self.state.withLock { state -> (UpstreamConnection, Upload?)? in
            guard !state.finished else { return nil }
            state.finished = true
            return (state.connection, state.upload)
        }
        guard let (connection, upload) = taken else { return }
        var keep = reusable
        if let upload, !upload.completed {
            upload.cancel()
            keep = false
        }
        self.node.active.subtract(1, ordering: .relaxed)
        self.node.pool.release(connection, reusable: keep)
    }

    deinit {
        let (finished, recorded, connection, upload) = self.state.withLock {
            ($0.finished, $0.recorded, $0.connection, $0.upload)
        }
        if !recorded, case .trial = self.admission {
            self.node.record(.failure(.closed), admission: self.admission, now: .now())
        }
        if !finished {
            upload?.cancel()
            self.node.active.subtract(1, ordering: .relaxed)
            self.node.pool.release(connection, reusable: false)
        }
    }
}

/// Streams a request body to the upstream in its own task, so the response can be read at the
/// same time (an upstream may answer before it read the whole body).
///
/// With `Expect: 100-continue` it waits for the upstream's `100 Continue` (or the timeout)
/// before reading the client's body, which is when the server sends the client its own
/// `100 Continue`. A final answer that comes first abandons the body: it is never read, and
/// both connections close after the response.
final class Upload: Sendable {
    private enum Gate {
        case waiting(CheckedContinuation<Bool, Never>?)
        case open
        case abandoned
    }
    private struct State {
        var gate: Gate
        var task: Task<Void, Never>?
        var completed = false
    }
    private let state: Mutex<State>
    private let body: RequestBody
    private let connection: UpstreamConnection
    private let chunked: Bool
    private let continueTimeout: TimeAmount
    private let waitsForContinue: Bool
    private let logger: Logger

    init(
        body: RequestBody,
        connection: UpstreamConnection,
        chunked: Bool,
        waitsForContinue: Bool,
        continueTimeout: TimeAmount,
        logger: Logger
    ) {
        self.body = body
        self.connection = connection
        self.chunked = chunked
        self.waitsForContinue = waitsForContinue
        self.continueTimeout = continueTimeout
        self.logger = logger
        self.state = Mutex(State(gate: waitsForContinue ? .waiting(nil) : .open))
    }

    /// Whether the whole body went out.
    var completed: Bool { self.state.withLock { $0.completed } }

    func start() {
        let task = Task(executorPreference: EventLoopTaskExecutor(self.connection.eventLoop)) {
            await self.run()
        }
        self.state.withLock { $0.task = task }
        if self.waitsForContinue {
            self.connection.eventLoop.scheduleTask(in: self.continueTimeout) { [weak self] in self?.proceed() }
        }
    }

    /// The upstream asked for the body (or stopped being waited for).
    func proceed() {
        self.openGate(to: .open, go: true)
    }

    /// A final answer came before the body was asked for.
    func abandonIfWaiting() {
        self.openGate(to: .abandoned, go: false)
    }

    private func openGate(to gate: Gate, go: Bool) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Bool, Never>?? in
            guard case .waiting(let continuation) = state.gate else { return nil }
            state.gate = gate
            return .some(continuation)
        }
        if case .some(let waiting) = continuation { waiting?.resume(returning: go) }
    }

    func cancel() {
        self.abandonIfWaiting()
        self.state.withLock { $0.task }?.cancel()
    }

    private func waitForGate() async -> Bool {
        await withCheckedContinuation { continuation in
            let decided = self.state.withLock { state -> Bool? in
                switch state.gate {
                case .open: return true
                case .abandoned: return false
                case .waiting:
                    state.gate = .waiting(continuation)
                    return nil
                }
            }
            if let decided { continuation.resume(returning: decided) }
        }
    }

    private func run() async {
        guard await self.waitForGate() else { return }
        do {
            var buffer = ByteBuffer()
            for try await chunk in self.body {
                if Task.isCancelled { throw CancellationError() }
                if self.chunked {
                    guard chunk.readableBytes > 0 else { continue }
                    buffer.clear()
                    HeaderRules.encodeChunk(chunk, into: &buffer)
                    try await self.connection.write(buffer)
                } else {
                    try await self.connection.write(chunk)
                }
            }
            if self.chunked {
                buffer.clear()
                HeaderRules.encodeLastChunk(trailers: nil, into: &buffer)
                try await self.connection.write(buffer)
            }
            self.state.withLock { $0.completed = true }
            try await self.connection.requestEnded()
        } catch {
            // The upstream has part of a body: nothing more can be said on that connection.
            self.logger.info("request body not forwarded in full", metadata: ["error": "\(error)"])
            self.connection.close()
        }
    }
}

/// Bytes both ways between an upgraded client connection and its upstream connection.
struct Tunnel {
    let lease: Lease
    let idle: TimeAmount
    let total: TimeAmount?

    private enum Ended {
        case client
        case upstream
    }

    func run(_ client: UpgradedConnection) async throws {
        let connection = self.lease.connection
        defer {
            connection.close()
            self.lease.finish(reusable: false)
        }
        try await connection.startTunnel()
        let clock = ActivityClock()
        let idle = self.idle
        let deadline = self.total.map { NIODeadline.now() + $0 }
        try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                for try await bytes in client.inbound {
                    clock.touch()
                    try await connection.write(bytes)
                }
                connection.shutdownOutput()
                return .client
            }
            group.addTask {
                while let part = try await connection.next() {
                    guard case .raw(let bytes) = part else { continue }
                    clock.touch()
                    try await client.outbound.write(bytes)
                }
                client.outbound.finish()
                return .upstream
            }
            group.addTask {
                let tick = TimeAmount.nanoseconds(min(max(idle.nanoseconds / 10, 10_000_000), 1_000_000_000))
                while true {
                    try await Task.sleep(for: .nanoseconds(tick.nanoseconds))
                    let now = NIODeadline.now()
                    if now - clock.last >= idle || deadline.map({ now >= $0 }) ?? false {
                        connection.close()
                        throw TunnelTimeoutError()
                    }
                }
            }
            while let ended = try await group.next() {
                if ended == .upstream {
                    group.cancelAll()
                    return
                }
            }
        }
    }
}

/// The last time a tunnel carried bytes.
final class ActivityClock: Sendable {
    private let nanoseconds = Atomic<Int64>(Int64(NIODeadline.now().uptimeNanoseconds))
    func touch() { self.nanoseconds.store(Int64(NIODeadline.now().uptimeNanoseconds), ordering: .relaxed) }
    var last: NIODeadline { .uptimeNanoseconds(UInt64(self.nanoseconds.load(ordering: .relaxed))) }
}

/// A tunnel was idle, or open, for too long.
struct TunnelTimeoutError: Error, CustomStringConvertible {
    var description: String { "the tunnel timed out" }
}
