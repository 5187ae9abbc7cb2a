import Foundation
import Synchronization

/// One of the package's example executables, run as its own process on a free port (built
/// next to the test bundle by `swift build --build-tests`).
public final class ExampleProcess: Sendable {
    public let port: Int
    /// The process's ID, for reading its memory from `/proc`.
    public let pid: Int32
    private let process: Mutex<Process?>

    /// Starts `name --port <free port> arguments...` and waits until it accepts connections.
    ///
    /// - Parameter cpus: A CPU list for `taskset -c` (e.g. `"0"`): the process may run on those
    ///   CPUs only. `taskset` executes the example in place, so ``pid`` is the example's.
    public init(
        _ name: String, arguments: [String] = [], cpus: String? = nil, environment extra: [String: String] = [:]
    ) async throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ExternalProcess.Failure(
                description: "\(executable.path) is not built: run scripts/test.sh (swift build --build-tests)")
        }
        self.port = try RedisServerProcess.freePort()
        let process = Process()
        if let cpus {
            process.executableURL = URL(fileURLWithPath: try ExternalProcess.find("taskset"))
            process.arguments = ["-c", cpus, executable.path, "--port", "\(self.port)"] + arguments
        } else {
            process.executableURL = executable
            process.arguments = ["--port", "\(self.port)"] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "error"
        environment.merge(extra) { $1 }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.pid = process.processIdentifier
        self.process = Mutex(process)
        // A bound for a loaded machine, not a timing assertion.
        let port = self.port
        if await eventually({ RedisServerProcess.isListening(port: port) }) { return }
        self.stop()
        throw ExternalProcess.Failure(description: "\(name) did not start listening on \(self.port)")
    }

    /// The peak resident memory (`VmHWM`) and the current one (`VmRSS`), in bytes.
    public func memory() throws -> (peak: Int, current: Int) {
        let status = try String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8)
        func kilobytes(_ field: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return (kilobytes("VmHWM") * 1024, kilobytes("VmRSS") * 1024)
    }

    /// The names of the process's threads (`/proc/<pid>/task/*/comm`).
    public func threadNames() throws -> [String] {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(self.pid)/task")
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/\(self.pid)/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// SIGTERM (a graceful stop).
    public func stop() {
        self.process.withLock { process in
            if let pid = process?.processIdentifier, process?.isRunning == true { kill(pid, SIGTERM) }
            process = nil
        }
    }

    deinit {
        self.stop()
    }
}
