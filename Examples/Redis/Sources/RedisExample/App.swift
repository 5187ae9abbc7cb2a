import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataRedis
import StrataServer
import UnixSignals

/// The Redis example: `GET /hits` increments a counter in Redis and answers the new count.
///
/// `swift run RedisExample --port 8080 --url redis://127.0.0.1:6379`. When Redis is down or
/// misbehaves, `/hits` answers 503 within the command timeout; the client reconnects by itself
/// once Redis is back.
@main
struct RedisExample {
    static func main() async throws {
        let port = Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080"
        let url = Self.option("--url") ?? ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379"
        guard let portNumber = Int(port) else {
            print("invalid port \(port)")
            exit(2)
        }
        var logger = Logger(label: "redis-example")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let redis: RedisClient
        do {
            redis = RedisClient(configuration: try exampleConfiguration(url: url), logger: logger)
        } catch {
            print("\(error)")
            exit(2)
        }
        let server = HTTPServer(
            responder: buildResponder(redis: redis, logger: logger),
            configuration: try HTTPServerConfiguration(port: portNumber),
            logger: logger
        )
        let group = ServiceGroup(
            services: [server, redis], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func option(_ name: String) -> String? {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
}

/// Short timeouts, so an unreachable Redis turns into a prompt 503.
func exampleConfiguration(url: String) throws -> RedisConfiguration {
    var configuration = try RedisConfiguration(url: url)
    configuration.commandTimeout = .seconds(1)
    configuration.connectTimeout = .seconds(1)
    configuration.acquireTimeout = .seconds(1)
    configuration.maxReconnectDelay = .seconds(1)
    try configuration.validate()
    return configuration
}

/// The example's routes; tests reuse them.
func buildResponder(redis: RedisClient, logger: Logger) -> Router<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain; charset=utf-8"],
            body: .init(string: "GET /hits counts in Redis.\n"))
    }
    router.get("/hits") { _, _ in
        do {
            let hits = try await redis.incr("strata:example:hits")
            return ServerResponse(
                status: .ok, headerFields: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                body: .init(string: "\(hits)"))
        } catch {
            logger.warning("Redis unavailable for /hits", metadata: ["error": "\(error)"])
            return ServerResponse(
                status: .serviceUnavailable,
                headerFields: [.contentType: "text/plain; charset=utf-8", .retryAfter: "1"],
                body: .init(string: "Redis is unavailable\n"))
        }
    }
    return router
}
