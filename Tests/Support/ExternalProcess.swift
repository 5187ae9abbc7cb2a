import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs real clients (curl, Python) without blocking a concurrency thread: the server under
/// test needs those threads to answer.
public enum ExternalProcess {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws
        -> Output
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("out")
        let errURL = directory.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdout = try FileHandle(forWritingTo: outURL)
        let stderr = try FileHandle(forWritingTo: errURL)
        // The child has its own copies; ours would stay open for the rest of the suite.
        defer {
            try? stdout.close()
            try? stderr.close()
        }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            let once = ResumeOnce(continuation)
            process.terminationHandler = { once.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                once.resume(throwing: error)
                return
            }
            Self.watch(process, pid: process.processIdentifier, once: once, deadline: ContinuousClock.now + timeout)
        }
        return Output(
            status: status,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        )
    }

    /// Watches a child whose termination handler Foundation may fail to call (seen on Linux with
    /// many children at once: the child is gone, the handler never runs, and the test would hang).
    /// Every 250 ms: a child that no longer exists ends the wait with Foundation's status (or -1);
    /// past the deadline the child is terminated, and two seconds later the wait ends anyway.
    static func watch(_ process: Process, pid: Int32, once: ResumeOnce, deadline: ContinuousClock.Instant) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(250)) {
            if once.isDone { return }
            if kill(pid, 0) == -1 && errno == ESRCH {
                // Reaped: give the handler a moment, then stop waiting for it.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(250)) {
                    once.resume(returning: process.isRunning ? -1 : process.terminationStatus)
                }
                return
            }
            if ContinuousClock.now >= deadline {
                if process.isRunning { process.terminate() }
                DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(2)) { once.resume(returning: -1) }
                return
            }
            Self.watch(process, pid: pid, once: once, deadline: deadline)
        }
    }

    /// The project's Python with httpx, made by `scripts/test.sh`.
    public static func python() throws -> String {
        if let configured = ProcessInfo.processInfo.environment["STRATA_PYTHON"] { return configured }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let venv = root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw Failure(description: "no Python venv with httpx: run scripts/test.sh, which makes .venv")
        }
        return venv
    }

    public static func chromium() throws -> String {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Failure(description: "chromium is not installed: run scripts/test.sh")
    }

    /// The path of a system tool in `/usr/bin` or `/bin` (util-linux's `taskset`, ...).
    public static func find(_ tool: String) throws -> String {
        for directory in ["/usr/bin", "/bin", "/usr/local/bin"] {
            let path = directory + "/" + tool
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Failure(description: "\(tool) is not installed")
    }

    public static func curl() throws -> String {
        for path in ["/usr/bin/curl", "/usr/local/bin/curl"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Failure(description: "curl is not installed: run scripts/test.sh")
    }
}

/// Resumes a continuation at most once, from whichever of several paths gets there first.
final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Int32, any Error>?>

    init(_ continuation: CheckedContinuation<Int32, any Error>) {
        self.continuation = Mutex(continuation)
    }

    var isDone: Bool { self.continuation.withLock { $0 == nil } }

    func resume(returning status: Int32) {
        self.continuation.withLock { $0.take() }?.resume(returning: status)
    }

    func resume(throwing error: any Error) {
        self.continuation.withLock { $0.take() }?.resume(throwing: error)
    }
}
