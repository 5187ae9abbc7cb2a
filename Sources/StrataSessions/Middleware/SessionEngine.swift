import CoreMetrics
import HTTPTypes
import Logging
import Strata
import Synchronization

/// What a ``SessionMiddleware`` and the sessions it creates share.
struct SessionEngine: Sendable {
    let store: any SessionStore
    /// Set when the session lives in its cookie, not in a store.
    let sealer: (any SessionSealer)?
    let configuration: SessionConfiguration
    let codec: any SessionCodec
    let clock: any WallClock
    let logger: Logger
    let metrics: SessionMetrics
    let updateTurns = KeyedTurns()

    /// The first well-formed session ID among the request's cookies of the configured name.
    func presentedID(in fields: HTTPFields) -> SessionID? {
        var sawMalformed = false
        for (name, value) in fields.cookies where name == self.configuration.cookieName {
            if let id = SessionID(token: value) { return id }
            sawMalformed = true
        }
        if sawMalformed { self.rejected("malformed") }
        return nil
    }

    /// A cookie that names no usable session: logged at debug and counted, never an error.
    func rejected(_ reason: String) {
        self.logger.debug("session cookie ignored", metadata: ["reason": "\(reason)"])
        self.metrics.rejected(reason).increment()
    }
}

/// The counters sessions report through swift-metrics:
/// `strata_sessions_created_total`, `strata_sessions_written_total`,
/// `strata_sessions_regenerated_total`, `strata_sessions_destroyed_total`,
/// `strata_sessions_store_errors_total`, and `strata_sessions_rejected_total` with a `reason`
/// (`malformed`, `unknown`, `expired`, `gone`).
struct SessionMetrics: Sendable {
    let created: Counter
    let written: Counter
    let regenerated: Counter
    let destroyed: Counter
    let storeErrors: Counter
    private let factory: (any MetricsFactory)?

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
        func counter(_ name: String) -> Counter {
            if let factory { return Counter(label: "strata_sessions_\(name)", factory: factory) }
            return Counter(label: "strata_sessions_\(name)")
        }
        self.created = counter("created_total")
        self.written = counter("written_total")
        self.regenerated = counter("regenerated_total")
        self.destroyed = counter("destroyed_total")
        self.storeErrors = counter("store_errors_total")
    }

    func rejected(_ reason: String) -> Counter {
        let dimensions = [("reason", reason)]
        if let factory {
            return Counter(label: "strata_sessions_rejected_total", dimensions: dimensions, factory: factory)
        }
        return Counter(label: "strata_sessions_rejected_total", dimensions: dimensions)
    }
}

/// First-come, first-served turns per key, for the tasks of one process.
final class KeyedTurns: Sendable {
    private let waiting = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    /// A turn at `key`, once the tasks that asked before have released theirs.
    struct Turn {
        let turns: KeyedTurns
        let key: String

        /// Hands the turn to the next task waiting; call it exactly once.
        func release() { self.turns.release(self.key) }
    }

    func acquire(_ key: String) async -> Turn {
        await withCheckedContinuation { continuation in
            let mine = self.waiting.withLock { waiting -> Bool in
                if waiting[key] == nil {
                    waiting[key] = []
                    return true
                }
                waiting[key]?.append(continuation)
                return false
            }
            if mine { continuation.resume() }
        }
        return Turn(turns: self, key: key)
    }

    private func release(_ key: String) {
        let next = self.waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard var queue = waiting[key], !queue.isEmpty else {
                waiting[key] = nil
                return nil
            }
            let first = queue.removeFirst()
            waiting[key] = queue
            return first
        }
        next?.resume()
    }
}
