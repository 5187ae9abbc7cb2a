import Foundation
import NIOCore
import StrataRedis
import StrataTestSupport
import StrataTesting
import Testing

@testable import RedisExample

/// The example's `/hits` route over a real socket, with Redis up, down and back; and the
/// configuration checks.
@Suite struct ExampleAndConfigurationTests {
    @Test func hitsCountsAnswers503WhileRedisIsDownAndRecovers() async throws {
        try await RedisServerProcess.with { server in
            let redis = RedisClient(
                configuration: try exampleConfiguration(url: server.url), logger: RedisTestEnvironment.logger)
            try await withLiveServer(responder: buildResponder(redis: redis, logger: RedisTestEnvironment.logger)) {
                port in
                func hits() async throws -> (Int?, String) {
                    let response = parseResponses(
                        try await RawHTTPClient.exchange(
                            "GET /hits HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port,
                            timeout: .seconds(10))
                    ).first
                    return (response?.status, response?.body ?? "")
                }
                // The first request also connects (on a loaded machine that can take longer
                // than the example's one-second timeouts): wait for the first count.
                var first = (Int?.none, "")
                let counted = try await eventually {
                    first = try await hits()
                    return first.0 == 200
                }
                #expect(counted)
                // A first try that timed out may still have counted (its INCR may have run):
                // the count is whatever it says, and the next one is one more.
                let count = try #require(Int(first.1))
                #expect(count >= 1)
                #expect(try await hits() == (200, "\(count + 1)"))
                try await server.kill()
                #expect(try await hits().0 == 503)
                server.pause()  // no process: a no-op
                try await server.start()
                let recovered = try await eventually { try await hits().0 == 200 }
                #expect(recovered)
                // Paused: accepted, never answered; 503 within the one-second command timeout.
                server.pause()
                defer { server.resume() }
                let (paused, _) = try await hits()
                #expect(paused == 503)
            }
            await redis.shutdown()
        }
    }

    @Test func urlsAndConfigurationsAreValidatedWithTheFix() throws {
        let tcp = try RedisConfiguration(url: "redis://user:p%40ss@10.0.0.1:6380/2")
        #expect(tcp.mode == .standalone(.tcp(host: "10.0.0.1", port: 6380)))
        #expect(tcp.username == "user" && tcp.password == "p@ss" && tcp.database == 2)
        #expect(
            try RedisConfiguration(url: "redis://localhost").mode == .standalone(.tcp(host: "localhost", port: 6379)))
        #expect(try RedisConfiguration(url: "redis://[::1]:7000").mode == .standalone(.tcp(host: "::1", port: 7000)))
        let unix = try RedisConfiguration(url: "unix:///var/run/redis.sock?db=1")
        #expect(unix.mode == .standalone(.unixSocket(path: "/var/run/redis.sock")) && unix.database == 1)
        for bad in [
            "http://host", "redis://", "redis://host:99999", "redis://host:x", "redis://host/x", "rediss://host",
            "unix://relative", "redis://[::1", "redis://user:secretpw@host:0",
        ] {
            do {
                _ = try RedisConfiguration(url: bad)
                Issue.record("\(bad) should be refused")
            } catch {
                #expect(!error.description.contains("secretpw"), "the password leaked: \(error)")
            }
        }
        var configuration = try RedisConfiguration(url: "redis://h")
        configuration.minConnections = 9
        configuration.maxConnections = 2
        configuration.commandTimeout = .zero
        do {
            try configuration.validate()
            Issue.record("min > max should be refused")
        } catch {
            #expect(error.problems.count == 2, "\(error.problems)")
        }
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(clusterNodes: []) }
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(clusterNodes: ["redis://h:1/2"]) }
    }

    @Test func theUnixSocketEndpointWorks() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-\(UUID().uuidString.prefix(6)).sock"
        ).path
        try await RedisServerProcess.with { server in
            _ = server
            let unixServer = try RedisServerProcess()
            try await unixServer.start(["--unixsocket", path, "--unixsocketperm", "700"])
            defer { Task { await unixServer.stop() } }
            try await RedisTestEnvironment.withClient(url: "unix://\(path)") { redis in
                try await redis.set("unix", to: "yes")
                #expect(try await redis.getString("unix") == "yes")
            }
            await unixServer.stop()
        }
    }
}
