import CoreMetrics
import Synchronization

/// What the client reports through swift-metrics.
///
/// - `strata_redis_commands_total` and `strata_redis_command_duration_seconds` (a timer), by
///   `command`;
/// - `strata_redis_errors_total` by `kind` (a ``RedisClientError/Code``, or `server` for an
///   error reply);
/// - `strata_redis_connections` (gauge, by `kind`: `shared`, `dedicated`),
///   `strata_redis_connects_failed_total`, `strata_redis_reconnects_total`,
///   `strata_redis_command_timeouts_total`, `strata_redis_pool_timeouts_total`.
///
/// Metric handles are made once per command name, not per command.
final class RedisMetrics: Sendable {
    private let factory: any MetricsFactory
    let enabled: Bool
    let reconnects: Counter
    let connectFailures: Counter
    let commandTimeouts: Counter
    let poolTimeouts: Counter
    private let sharedConnections: Gauge
    private let dedicatedConnections: Gauge
    private let openCounts = Mutex<(shared: Int, dedicated: Int)>((0, 0))
    private let perCommand = Mutex<[String: (count: Counter, duration: Timer)]>([:])
    private let errors = Mutex<[String: Counter]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.enabled = !(factory is NOOPMetricsHandler)
        self.reconnects = Counter(label: "strata_redis_reconnects_total", factory: factory)
        self.connectFailures = Counter(label: "strata_redis_connects_failed_total", factory: factory)
        self.commandTimeouts = Counter(label: "strata_redis_command_timeouts_total", factory: factory)
        self.poolTimeouts = Counter(label: "strata_redis_pool_timeouts_total", factory: factory)
        self.sharedConnections = Gauge(
            label: "strata_redis_connections", dimensions: [("kind", "shared")], factory: factory)
        self.dedicatedConnections = Gauge(
            label: "strata_redis_connections", dimensions: [("kind", "dedicated")], factory: factory)
    }

    func command(_ name: String, nanoseconds: Int64) {
        guard self.enabled else { return }
        let handles = self.perCommand.withLock { cache in
            if let handles = cache[name] { return handles }
            let handles = (
                Counter(label: "strata_redis_commands_total", dimensions: [("command", name)], factory: self.factory),
                Timer(
                    label: "strata_redis_command_duration_seconds", dimensions: [("command", name)],
                    factory: self.factory)
            )
            cache[name] = handles
            return handles
        }
        handles.count.increment()
        handles.duration.recordNanoseconds(nanoseconds)
    }

    func error(_ kind: String) {
        guard self.enabled else { return }
        self.errors.withLock { cache in
            if let counter = cache[kind] { return counter }
            let counter = Counter(
                label: "strata_redis_errors_total", dimensions: [("kind", kind)], factory: self.factory)
            cache[kind] = counter
            return counter
        }.increment()
    }

    func connectionsOpened(dedicated: Bool) {
        let counts = self.openCounts.withLock { counts in
            if dedicated { counts.dedicated += 1 } else { counts.shared += 1 }
            return counts
        }
        self.sharedConnections.record(counts.shared)
        self.dedicatedConnections.record(counts.dedicated)
    }

    func connectionsClosed(shared: Int, dedicated: Int) {
        guard shared + dedicated > 0 else { return }
        let counts = self.openCounts.withLock { counts in
            counts.shared = max(0, counts.shared - shared)
            counts.dedicated = max(0, counts.dedicated - dedicated)
            return counts
        }
        self.sharedConnections.record(counts.shared)
        self.dedicatedConnections.record(counts.dedicated)
    }
}
