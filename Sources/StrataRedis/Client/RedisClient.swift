public import CoreMetrics
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization
public import Tracing

/// A Redis client: a pool of pipelined connections per node, for a standalone server or a
/// Redis Cluster.
///
/// Commands sent concurrently from many tasks share a few connections: they are written back
/// to back and their replies matched in order (automatic pipelining), so 1,000 concurrent
/// `GET`s need no 1,000 connections. Transactions, blocking commands and subscriptions take a
/// connection of their own.
///
/// ```swift
/// let redis = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:6379"), logger: logger)
/// try await redis.set("greeting", to: "hello", expiration: .seconds(60))
/// let hits = try await redis.incr("hits")
/// ```
///
/// It is a swift-service-lifecycle `Service`: in a `ServiceGroup`, graceful shutdown lets
/// in-flight commands finish (within ``shutdown(gracePeriod:)``'s period) and then closes.
///
/// **What is retried.** A command that may have reached the server is never resent: a
/// connection that closes with it unanswered fails it with ``RedisClientError`` and
/// `mayHaveRun == true`. Only `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN` and `LOADING` answers,
/// which prove the command did not run, are retried, up to
/// ``RedisConfiguration/maxRedirects`` times, with millisecond backoff.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    let metrics: RedisMetrics
    private let tracer: (any Tracer)?
    private let topology: Topology
    private let serverAddress: (host: String, port: Int?)?

    enum Topology: Sendable {
        case standalone(RedisNodePool)
        case cluster(ClusterTopology)
    }

    /// Creates a client; connections open on first use (and `minConnections` are kept).
    ///
    /// - Parameters:
    ///   - configuration: Where and how to connect; already validated.
    ///   - eventLoopGroup: NIO threads for the connections.
    ///   - logger: Reconnects and cluster-map changes are logged at debug; secrets never.
    ///   - metricsFactory: swift-metrics factory; the bootstrapped one by default.
    ///   - tracer: swift-distributed-tracing tracer for the command spans; the bootstrapped one
    ///     by default (none when nothing was bootstrapped).
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "strata.redis"),
        metricsFactory: (any MetricsFactory)? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        let metrics = RedisMetrics(factory: metricsFactory ?? MetricsSystem.factory)
        self.metrics = metrics
        let tracer = tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
        switch configuration.mode {
        case .standalone(let endpoint):
            self.topology = .standalone(
                RedisNodePool(
                    endpoint: endpoint, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger,
                    metrics: metrics))
            if case .tcp(let host, let port) = endpoint {
                self.serverAddress = (host, port)
            } else if case .unixSocket(let path) = endpoint {
                self.serverAddress = (path, nil)
            } else {
                self.serverAddress = nil
            }
        case .cluster(let seeds):
            self.topology = .cluster(
                ClusterTopology(seeds: seeds, logger: logger) { endpoint in
                    RedisNodePool(
                        endpoint: endpoint, configuration: configuration, eventLoopGroup: eventLoopGroup,
                        logger: logger, metrics: metrics)
                })
            self.serverAddress = nil
        }
    }

    /// A client released without ``shutdown(gracePeriod:)`` closes its connections (their
    /// commands still waiting fail with `connectionClosed`).
    deinit {
        for pool in self.pools {
            pool.beginShutdown()
            pool.closeAll()
        }
    }

    // MARK: Lifecycle

    /// Runs until graceful shutdown (or cancellation), then shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
        await self.shutdown()
    }

    /// Refuses new commands, lets those in flight finish for up to `gracePeriod`, then closes
    /// every connection (what is still unanswered fails with `connectionClosed`).
    public func shutdown(gracePeriod: Duration = .seconds(5)) async {
        let pools = self.pools
        for pool in pools { pool.beginShutdown() }
        let deadline = ContinuousClock.now + gracePeriod
        while pools.contains(where: { $0.commandsInFlight > 0 }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for pool in pools { pool.closeAll() }
        self.logger.debug("Redis client shut down")
    }

    /// Commands sent on shared connections and not answered yet, over every node: those
    /// waiting for the next write and those written and waiting for their replies. How deep
    /// automatic pipelining runs right now (commands on dedicated connections are not
    /// counted).
    public var commandsInFlight: Int {
        self.pools.reduce(0) { $0 + $1.commandsInFlight }
    }

    private var pools: [RedisNodePool] {
        switch self.topology {
        case .standalone(let pool): [pool]
        case .cluster(let cluster): cluster.allPools
        }
    }

    // MARK: Sending

    /// Sends a command and returns its reply.
    ///
    /// - Throws: ``RedisServerError`` for an error reply; ``RedisClientError`` when there is
    ///   no reply (see ``RedisClientError/mayHaveRun``).
    @discardableResult @inline(__always)
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        // Without a tracer, no span to carry: an optional existential copied and checked at
        // each step cost more than the rest of this function.
        guard let tracer = self.tracer else { return try await self.measured(command) }
        let span = self.startSpan(command, tracer: tracer)
        do {
            let reply = try await self.measured(command)
            span.end()
            return reply
        } catch {
            span.recordError(error)
            span.end()
            throw error
        }
    }

    /// ``send(_:)`` with its metrics.
    @inline(__always)
    private func measured(_ command: RedisCommand) async throws -> RESPValue {
        let start = self.metrics.enabled ? NIODeadline.now() : .distantPast
        do {
            var reply: RESPValue
            // The usual case, a known node with a connection that has room, waits once, for the
            // reply, with no async call in between: each costs a frame on a task whose memory has
            // gone cold among many callers. Anything else takes the general path: an error reply
            // (which may ask for a retry or redirect), a cluster not mapped yet, and a pool or
            // connection that throws here (it throws again there, where the errors a retry may
            // follow are known).
            let known: RedisNodePool? =
                switch self.topology {
                case .standalone(let pool): pool
                case .cluster(let cluster): cluster.mappedPool(for: command.key)
                }
            if let known, let connection = try? known.connectionWithoutWaiting() {
                do {
                    reply = try await connection.send(command)
                } catch let error as RedisClientError where !error.mayHaveRun && error.code == .connectionClosed {
                    // The connection closed before the command was written (it waited for the
                    // next write): the general path takes another one, as it would have.
                    reply = try await self.routed(command, extraTimeout: .zero)
                }
                if case .error = reply {
                    reply = try await self.routed(command, extraTimeout: .zero, firstReply: reply)
                }
            } else {
                reply = try await self.routed(command, extraTimeout: .zero)
            }
            if case .error(let message) = reply { throw RedisServerError(message) }
            if self.metrics.enabled { self.metrics.command(command.name, nanoseconds: (.now() - start).nanoseconds) }
            return reply
        } catch {
            self.metrics.error((error as? RedisClientError)?.code.rawValue ?? "server")
            throw error
        }
    }

    /// Sends a command given as its words: `try await redis.send("CLIENT", "INFO")`.
    /// The second word routes it in a cluster unless `key` says otherwise.
    @discardableResult
    public func send(_ name: String, _ arguments: String..., key: String? = nil) async throws -> RESPValue {
        var command = RedisCommand(name)
        for argument in arguments { command.append(argument) }
        if let key = key ?? arguments.first { command.route(by: ByteBuffer(string: key)) }
        return try await self.send(command)
    }

    private func startSpan(_ command: RedisCommand, tracer: any Tracer) -> any Span {
        let span = tracer.startSpan(command.name, ofKind: .client)
        span.attributes["db.system.name"] = "redis"
        span.attributes["db.operation.name"] = command.name
        if let (host, port) = self.serverAddress {
            span.attributes["server.address"] = host
            if let port { span.attributes["server.port"] = port }
        }
        return span
    }

    /// Sends `command` to the node that serves it, following the answers that prove it did
    /// not run (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`).
    ///
    /// - Parameter firstReply: the reply to a first try the caller made itself, handled as if
    ///   it had come here.
    func routed(_ command: RedisCommand, extraTimeout: TimeAmount, firstReply: RESPValue? = nil) async throws
        -> RESPValue
    {
        var attempt = 0
        var asking: RedisConfiguration.Endpoint?
        var received = firstReply
        while true {
            let reply: RESPValue
            if let first = received {
                reply = first
                received = nil
            } else {
                let pool: RedisNodePool
                switch self.topology {
                case .standalone(let only): pool = only
                case .cluster(let cluster):
                    if let asking {
                        pool = cluster.pool(at: asking)
                    } else {
                        pool = try await cluster.pool(for: command.key)
                    }
                }
                do {
                    let connection: RedisConnection
                    if let ready = try pool.connectionWithoutWaiting() {
                        connection = ready
                    } else {
                        connection = try await pool.waitForConnection()
                    }
                    if asking != nil {
                        reply = try await connection.send(batch: [RedisCommand("ASKING"), command])[1]
                        asking = nil
                    } else {
                        reply = try await connection.send(command, extraTimeout: extraTimeout)
                    }
                } catch let error as RedisClientError where !error.mayHaveRun && error.code == .connectionClosed {
                    // Closed before the command was written: another connection may take it.
                    attempt += 1
                    guard attempt <= self.configuration.maxRedirects else { throw error }
                    continue
                }
            }
            guard case .error(let message) = reply else { return reply }
            let error = RedisServerError(message)
            let words = error.message.split(separator: " ")
            switch error.prefix {
            case "MOVED", "ASK":
                guard case .cluster(let cluster) = self.topology, words.count >= 3, let slot = Int(words[1]),
                    let endpoint = Self.endpoint(words[2])
                else { return reply }
                attempt += 1
                guard attempt <= self.configuration.maxRedirects else {
                    throw RedisClientError(
                        .clusterUnavailable, mayHaveRun: false, message: "still redirected after \(attempt - 1) tries")
                }
                if error.prefix == "MOVED" {
                    cluster.moved(slot: slot, to: endpoint)
                } else {
                    asking = endpoint
                }
            case "TRYAGAIN", "CLUSTERDOWN", "LOADING":
                attempt += 1
                guard attempt <= self.configuration.maxRedirects else { return reply }
                let delay = self.configuration.retryDelay * (1 << min(attempt - 1, 10))
                self.logger.debug("retrying after \(error.prefix)", metadata: ["attempt": "\(attempt)"])
                try await Task.sleep(for: delay)
                if error.prefix == "CLUSTERDOWN", case .cluster(let cluster) = self.topology {
                    try? await cluster.refresh()
                }
            default:
                return reply
            }
        }
    }

    /// `host:port` (or `[v6]:port`) from a redirection.
    static func endpoint(_ text: Substring) -> RedisConfiguration.Endpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return .tcp(host: String(host), port: port)
    }

    // MARK: Dedicated connections

    /// Runs `body` with a connection of its own on the node that serves `key` (any node
    /// without one): for `MULTI`/`EXEC`, `WATCH`, blocking commands. The connection goes back
    /// to the pool after, unless a command on it was cancelled or timed out.
    public func withConnection<Result>(
        key: RedisKey? = nil,
        _ body: (RedisDedicatedConnection) async throws -> Result
    ) async throws -> Result {
        let pool: RedisNodePool
        switch self.topology {
        case .standalone(let only): pool = only
        case .cluster(let cluster): pool = try await cluster.pool(for: key?.bytes)
        }
        let connection = try await pool.leaseDedicated()
        let dedicated = RedisDedicatedConnection(connection: connection, client: self)
        do {
            let result = try await body(dedicated)
            pool.release(connection, reusable: dedicated.inStep)
            return result
        } catch {
            pool.release(connection, reusable: dedicated.inStep && !(error is CancellationError))
            throw error
        }
    }

    /// `MULTI`, the commands, `EXEC` on one connection; the results of `EXEC`, one per command
    /// (an error result is a ``RESPValue/error(_:)`` value, not a throw). In a cluster every key
    /// must be in `key`'s slot: use a hash tag.
    ///
    /// - Throws: ``RedisServerError`` if the transaction was refused (a command did not queue,
    ///   or `EXECABORT`); `WATCH`ed keys that changed give ``RESPValue/null`` from `EXEC`,
    ///   reported as an empty array here only if you did not `WATCH`.
    public func transaction(key: RedisKey? = nil, _ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await self.withConnection(key: key) { connection in
            try await connection.transaction(commands)
        }
    }

    /// The pools a SCAN visits: the one server, or every master of the cluster.
    func scanPools() async throws -> [RedisNodePool] {
        switch self.topology {
        case .standalone(let pool): return [pool]
        case .cluster(let cluster): return try await cluster.masters().map { cluster.pool(at: $0) }
        }
    }

    /// The pool a subscription connects to.
    func subscriptionPool(for channel: ByteBuffer?) async throws -> RedisNodePool {
        switch self.topology {
        case .standalone(let pool): return pool
        case .cluster(let cluster): return try await cluster.pool(for: channel)
        }
    }
}

/// A connection leased for one caller (see ``RedisClient/withConnection(key:_:)``).
public struct RedisDedicatedConnection: Sendable {
    let connection: RedisConnection
    let client: RedisClient
    private let state = InStep()

    init(connection: RedisConnection, client: RedisClient) {
        self.connection = connection
        self.client = client
    }

    /// Whether every command sent had its reply read (the connection can be reused).
    var inStep: Bool { self.state.value.load(ordering: .relaxed) }

    /// Sends a command on this connection.
    ///
    /// - Parameter blockingTimeout: for a blocking command (`BLPOP k 10`), the time it may
    ///   block, added to the command timeout.
    @discardableResult
    public func send(_ command: RedisCommand, blockingTimeout: Duration = .zero) async throws -> RESPValue {
        do {
            let reply = try await self.connection.send(command, extraTimeout: TimeAmount(blockingTimeout))
            if case .error(let message) = reply { throw RedisServerError(message) }
            return reply
        } catch let error as RedisServerError {
            throw error
        } catch {
            self.state.value.store(false, ordering: .relaxed)
            throw error
        }
    }

    /// `MULTI`, the commands and `EXEC`, written back to back.
    public func transaction(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        let replies: [RESPValue]
        do {
            replies = try await self.connection.send(batch: [RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
        } catch {
            self.state.value.store(false, ordering: .relaxed)
            throw error
        }
        guard let exec = replies.last else { return [] }
        if case .error(let message) = exec { throw RedisServerError(message) }
        if let queued = replies.dropFirst().dropLast().first(where: { if case .error = $0 { true } else { false } }),
            case .error(let message) = queued
        {
            throw RedisServerError(message)
        }
        return exec.elements ?? []
    }

    private final class InStep: Sendable {
        let value = Atomic<Bool>(true)
    }
}
