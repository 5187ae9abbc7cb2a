import Foundation
public import Logging
public import StrataRedis
import StrataTestSupport

/// The real Redis server and cluster that `scripts/test.sh` starts, as the Redis stores' test
/// suites reach them: `STRATA_REDIS_URL` (standalone) and `STRATA_REDIS_CLUSTER` (a comma list).
public enum RedisTestEnvironment {
    /// A logger that stays quiet unless something is critical.
    public static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .critical
        return logger
    }

    /// The value of an environment variable `scripts/test.sh` sets.
    ///
    /// - Throws: when it is missing, naming the script to run.
    public static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name] else {
            throw ExternalProcess.Failure(description: "\(name): run the tests through scripts/test.sh")
        }
        return value
    }

    /// The standalone server (or `url`), or the cluster, with a connect timeout long enough for
    /// a loaded two-core machine.
    public static func configuration(url: String? = nil, cluster: Bool = false) throws -> RedisConfiguration {
        var configuration =
            cluster
            ? try RedisConfiguration(
                clusterNodes: try Self.variable("STRATA_REDIS_CLUSTER").split(separator: ",").map(String.init))
            : try RedisConfiguration(url: try url ?? Self.variable("STRATA_REDIS_URL"))
        configuration.connectTimeout = .seconds(30)
        return configuration
    }

    /// A client, shut down after `body` whether it throws or not.
    public static func withClient<Result>(
        _ configuration: RedisConfiguration, logger: Logger, _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        let client = RedisClient(configuration: configuration, logger: logger)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}
