public import Logging
import Synchronization

/// Keeps every log line a test's code writes, so the test can check that a failure was logged.
public final class LogRecorder: Sendable {
    private let lines = Mutex<[(Logger.Level, String)]>([])

    public init() {}

    /// A logger writing here, at `level` and above.
    public func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "strata.test.recorded") { _ in RecordingLogHandler(recorder: self) }
        logger.logLevel = level
        return logger
    }

    /// The messages logged at `level` or above.
    public func messages(atLeast level: Logger.Level) -> [String] {
        self.lines.withLock { lines in lines.filter { $0.0 >= level }.map(\.1) }
    }

    fileprivate func record(_ level: Logger.Level, _ message: String) {
        self.lines.withLock { $0.append((level, message)) }
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        // The message, then its metadata sorted, so a test can check a logged cause.
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let details = merged.keys.sorted().map { "\($0)=\(merged[$0].map { "\($0)" } ?? "")" }
        self.recorder.record(event.level, ([event.message.description] + details).joined(separator: " "))
    }
}
