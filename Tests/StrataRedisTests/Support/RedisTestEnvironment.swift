import Foundation
import Logging
import NIOCore
import StrataRedis
import StrataTestSupport
import Synchronization
import Testing

/// The servers `scripts/test.sh` started, and private servers for tests that kill or pause one.
enum RedisTestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        var variable: String
        var description: String { "\(variable) is not set: run the tests through scripts/test.sh, which starts Redis" }
    }

    static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw Missing(variable: name)
        }
        return value
    }

    /// The shared standalone server.
    static func standaloneURL() throws -> String { try Self.variable("STRATA_REDIS_URL") }

    /// The shared 3-master cluster's node URLs.
    static func clusterURLs() throws -> [String] {
        try Self.variable("STRATA_REDIS_CLUSTER").split(separator: ",").map(String.init)
    }

    static var logger: Logger {
        var logger = Logger(label: "strata.test.redis")
        // STRATA_REDIS_LOG=debug shows each connect, reconnect and cluster-map change.
        let level = ProcessInfo.processInfo.environment["STRATA_REDIS_LOG"].flatMap { Logger.Level(rawValue: $0) }
        logger.logLevel = level ?? .info
        return logger
    }

    /// A client for the shared server, shut down after `body`.
    ///
    /// - Parameter connected: first waits (up to a minute) until the client has a connection,
    ///   so that a test of a short timeout measures that timeout, not how long a machine loaded
    ///   by the whole parallel suite takes to schedule the first connect.
    static func withClient<Result>(
        _ configure: (inout RedisConfiguration) throws -> Void = { _ in },
        url: String? = nil,
        connected: Bool = true,
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        var configuration = try RedisConfiguration(url: try url ?? Self.standaloneURL())
        try configure(&configuration)
        try configuration.validate()
        let client = RedisClient(configuration: configuration, logger: Self.logger)
        do {
            if connected {
                let up = await Self.eventually { (try? await client.ping()) != nil }
                try #require(up, "no connection to \(configuration.mode) within a minute")
            }
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// A client for the shared cluster.
    static func withClusterClient<Result>(
        _ configure: (inout RedisConfiguration) throws -> Void = { _ in },
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        var configuration = try RedisConfiguration(clusterNodes: try Self.clusterURLs())
        try configure(&configuration)
        let client = RedisClient(configuration: configuration, logger: Self.logger)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Polls `condition` until it holds or `limit` has passed; whether it held. A bound for a
    /// loaded machine, not a timing assertion.
    static func eventually(
        within limit: Duration = .seconds(60), _ condition: () async throws -> Bool
    ) async rethrows -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    /// A unique key prefix per test, so tests sharing a server never see each other's keys.
    static func uniquePrefix(_ name: String = #function) -> String {
        "test:\(name.prefix { $0 != "(" }):\(UUID().uuidString.prefix(8))"
    }
}

/// A `redis-server` of a test's own, on a free port: killed, paused and restarted at will.
final class RedisServerProcess: Sendable {
    let port: Int
    private let process = Mutex<Process?>(nil)
    private let directory: URL

    init() throws {
        self.port = try Self.freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    var url: String { "redis://127.0.0.1:\(self.port)" }

    /// Starts the server and waits until it answers `PING`.
    func start(_ extraArguments: [String] = []) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try RedisTestEnvironment.variable("STRATA_REDIS_SERVER"))
        process.arguments =
            [
                "--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.directory.path, "--logfile", self.directory.appendingPathComponent("log").path,
            ] + extraArguments
        try process.run()
        self.process.withLock { $0 = process }
        for _ in 0..<200 {
            if (try? await Self.ping(port: self.port)) == true { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ExternalProcess.Failure(description: "redis-server on \(self.port) did not start")
    }

    /// SIGKILL, and waits until the port refuses connections (the kernel closes the dead
    /// process's sockets at once; Foundation's `waitUntilExit` is not used, as it can block a
    /// thread of the cooperative pool for long on Linux).
    func kill() async throws {
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
    func pause() {
        self.signal(SIGSTOP)
    }

    /// SIGCONT.
    func resume() {
        self.signal(SIGCONT)
    }

    private func signal(_ signal: Int32) {
        if let pid = self.process.withLock({ $0?.processIdentifier }) { Foundation.kill(pid, signal) }
    }

    func stop() async {
        self.resume()
        try? await self.kill()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Runs `body` with a started server, stopped after.
    static func with<Result>(_ body: (RedisServerProcess) async throws -> Result) async throws -> Result {
        let server = try RedisServerProcess()
        try await server.start()
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    static func freePort() throws -> Int {
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
    static func isListening(port: Int) -> Bool {
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
    static func ping(port: Int) async throws -> Bool {
        let output = try await ExternalProcess.run(
            "/usr/bin/env", ["redis-cli", "-p", "\(port)", "ping"], timeout: .seconds(5))
        return output.stdout.contains("PONG")
    }

    /// Runs `redis-cli -p port args...` and returns its output.
    static func cli(port: Int, _ arguments: [String]) async throws -> String {
        try await ExternalProcess.run(
            "/usr/bin/env", ["redis-cli", "-p", "\(port)"] + arguments, timeout: .seconds(30)
        )
        .stdout
    }
}
