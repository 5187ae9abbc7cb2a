import Foundation
import Logging
import NIOCore
import StrataRedis
import StrataRedisTestSupport
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
        Self.loosenForALoadedMachine(&configuration)
        try configure(&configuration)
        try configuration.validate()
        return try await Self.using(configuration, connected: connected, body)
    }

    /// A client for the shared cluster.
    static func withClusterClient<Result>(
        _ configure: (inout RedisConfiguration) throws -> Void = { _ in },
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        var configuration = try RedisConfiguration(clusterNodes: try Self.clusterURLs())
        Self.loosenForALoadedMachine(&configuration)
        try configure(&configuration)
        return try await Self.using(configuration, connected: true, body)
    }

    /// Runs `body` with a client for `configuration`, shut down after, whatever happens.
    private static func using<Result>(
        _ configuration: RedisConfiguration, connected: Bool, _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        try await StrataRedisTestSupport.RedisTestEnvironment.withClient(configuration, logger: Self.logger) { client in
            if connected {
                let up = await eventually { (try? await client.ping()) != nil }
                try #require(up, "no connection to \(configuration.mode) within a minute")
            }
            return try await body(client)
        }
    }

    /// Long acquire and command timeouts for tests that do not test them: the whole suite runs
    /// in parallel on two cores, where a first connect or a reply can take seconds. Tests of a
    /// timeout set their own.
    static func loosenForALoadedMachine(_ configuration: inout RedisConfiguration) {
        configuration.acquireTimeout = .seconds(60)
        configuration.commandTimeout = .seconds(30)
        configuration.connectTimeout = .seconds(30)
    }

    /// A unique key prefix per test, so tests sharing a server never see each other's keys.
    static func uniquePrefix(_ name: String = #function) -> String {
        "test:\(name.prefix { $0 != "(" }):\(UUID().uuidString.prefix(8))"
    }
}
