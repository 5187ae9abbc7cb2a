import Foundation

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
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
            let (seconds, _) = timeout.components
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(seconds))) {
                if process.isRunning { process.terminate() }
            }
        }
        return Output(
            status: status,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        )
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

    public static func curl() throws -> String {
        for path in ["/usr/bin/curl", "/usr/local/bin/curl"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Failure(description: "curl is not installed: run scripts/test.sh")
    }
}
