import Foundation
import Synchronization

/// A `redis-server` of a test's own, on a free port: killed, paused and restarted at will.
public final class RedisServerProcess: Sendable {
    public let port: Int
    private let process = Mutex<Process?>(nil)
    private let directory: URL

    public init() throws {
        self.port = try Self.freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    /// `redis-server`, as `scripts/test.sh` found it (`STRATA_REDIS_SERVER`).
    static func serverPath() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["STRATA_REDIS_SERVER"], !path.isEmpty else {
            throw ExternalProcess.Failure(
                description: "STRATA_REDIS_SERVER is not set: run the tests through scripts/test.sh, which starts Redis"
            )
        }
        return path
    }

    public var url: String { "redis://127.0.0.1:\(self.port)" }

    /// Starts the server and waits until it answers `PING`.
    public func start(_ extraArguments: [String] = []) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.serverPath())
        process.arguments =
            [
                "--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.directory.path, "--logfile", self.directory.appendingPathComponent("log").path,
            ] + extraArguments
        try process.run()
        self.process.withLock { $0 = process }
        // A bound for a machine loaded by the whole parallel suite, not a timing assertion.
        guard await eventually({ (try? await Self.ping(port: self.port)) == true }) else {
            throw ExternalProcess.Failure(description: "redis-server on \(self.port) did not start")
        }
        // The port is chosen free and then bound by the server: a server started by a test
        // running in parallel may have taken it in between. Answering is not enough; it must
        // be this process.
        let info = try await Self.cli(port: self.port, ["info", "server"])
        guard info.contains("process_id:\(process.processIdentifier)\r") else {
            throw PortTaken(port: self.port)
        }
    }

    /// Another server took the port between choosing and binding it.
    public struct PortTaken: Error, CustomStringConvertible {
        public let port: Int
        public var description: String { "port \(self.port) was taken by another server" }
    }

    /// SIGKILL, and waits until the port refuses connections (the kernel closes the dead
    /// process's sockets at once; Foundation's `waitUntilExit` is not used, as it can block a
    /// thread of the cooperative pool for long on Linux).
    public func kill() async throws {
        let pid = self.process.withLock { process -> Int32? in
            defer { process = nil }
            return process?.processIdentifier
        }
        guard let pid else { return }
        Foundation.kill(pid, SIGCONT)
        Foundation.kill(pid, SIGKILL)
        for _ in 0..<500 {
            if !Self.isListening(port: self.port) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ExternalProcess.Failure(description: "redis-server on \(self.port) did not die")
    }

    /// SIGSTOP: the kernel still accepts connections, the server answers nothing.
    public func pause() {
        self.signal(SIGSTOP)
    }

    /// SIGCONT.
    public func resume() {
        self.signal(SIGCONT)
    }

    private func signal(_ signal: Int32) {
        if let pid = self.process.withLock({ $0?.processIdentifier }) { Foundation.kill(pid, signal) }
    }

    public func stop() async {
        self.resume()
        try? await self.kill()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Runs `body` with a started server, stopped after.
    public static func with<Result>(_ body: (RedisServerProcess) async throws -> Result) async throws -> Result {
        var attempt = 0
        var server = try RedisServerProcess()
        while true {
            do {
                try await server.start()
                break
            } catch is PortTaken where attempt < 5 {
                await server.stop()
                attempt += 1
                server = try RedisServerProcess()
            }
        }
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    public static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0 else { throw ExternalProcess.Failure(description: "no free port") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0 else { throw ExternalProcess.Failure(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on `127.0.0.1:port`.
    public static func isListening(port: Int) -> Bool {
        let fd = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    /// `redis-cli -p port ping` answered PONG.
    public static func ping(port: Int) async throws -> Bool {
        let output = try await ExternalProcess.run(
            "/usr/bin/env", ["redis-cli", "-p", "\(port)", "ping"], timeout: .seconds(5))
        return output.stdout.contains("PONG")
    }

    /// Runs `redis-cli -p port args...` and returns its output.
    public static func cli(port: Int, _ arguments: [String]) async throws -> String {
        try await ExternalProcess.run(
            "/usr/bin/env", ["redis-cli", "-p", "\(port)"] + arguments, timeout: .seconds(30)
        )
        .stdout
    }
}
