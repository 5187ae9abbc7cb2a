import Foundation
import Logging
import NIOCore
import NIOPosix
import Strata
import StrataRedis
import StrataTestSupport
import Synchronization
import Testing

/// Where shared connections live: on the event loop of a caller running on one, and only as
/// long as the client.
@Suite struct ConnectionPlacementTests {
    /// The connections named `name` on `server` (`CLIENT LIST`).
    static func connections(named name: String, on server: RedisServerProcess) async throws -> Int {
        let list = try await RedisServerProcess.cli(port: server.port, ["CLIENT", "LIST"])
        return list.split(separator: "\n").filter { $0.contains("name=\(name) ") }.count
    }

    static func configuration(_ server: RedisServerProcess, name: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.clientName = name
        configuration.minConnections = 1
        RedisTestEnvironment.loosenForALoadedMachine(&configuration)
        return configuration
    }

    @Test func callersOnEventLoopsEachGetAConnectionOnTheirLoop() async throws {
        try await RedisServerProcess.with { server in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
            let redis = RedisClient(
                configuration: try Self.configuration(server, name: "placed"), eventLoopGroup: group,
                logger: RedisTestEnvironment.logger)
            // Callers on the global executor: one connection carries them all (it is nowhere
            // near `pipelineDepthToGrow` deep).
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for index in 0..<30 { tasks.addTask { _ = try await redis.incr(RedisKey("global:\(index % 3)")) } }
                try await tasks.waitForAll()
            }
            let afterGlobal = try await Self.connections(named: "placed", on: server)
            #expect(afterGlobal == 1)
            // Callers on each of the three loops: each loop gets a connection of its own.
            let loops = Array(group.makeIterator())
            for round in 0..<3 {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for (index, loop) in loops.enumerated() {
                        tasks.addTask(executorPreference: EventLoopTaskExecutor(loop)) {
                            #expect(loop.inEventLoop)
                            _ = try await redis.incr(RedisKey("loop:\(index):\(round)"))
                        }
                    }
                    try await tasks.waitForAll()
                }
            }
            let afterLoops = try await Self.connections(named: "placed", on: server)
            #expect(afterLoops == 3)
            await redis.shutdown()
            try await group.shutdownGracefully()
        }
    }

    @Test func aLoopsConnectionsGrowPastThePipelineDepth() async throws {
        try await RedisServerProcess.with { server in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var configuration = try Self.configuration(server, name: "deep")
            configuration.pipelineDepthToGrow = 1
            configuration.maxConnections = 3
            let redis = RedisClient(
                configuration: configuration, eventLoopGroup: group, logger: RedisTestEnvironment.logger)
            let loop = group.next()
            // Many commands at once from the one loop, several rounds: past one command in
            // flight, the loop's connection is "deep", and another opens on the same loop.
            for round in 0..<20 {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for index in 0..<50 {
                        tasks.addTask(executorPreference: EventLoopTaskExecutor(loop)) {
                            _ = try await redis.incr(RedisKey("deep:\(round):\(index)"))
                        }
                    }
                    try await tasks.waitForAll()
                }
            }
            let connections = try await Self.connections(named: "deep", on: server)
            #expect(connections > 1 && connections <= 3)
            await redis.shutdown()
            try await group.shutdownGracefully()
        }
    }

    /// A reply is counted as answered before its caller is resumed: 48 callers sending one
    /// command after another never count more than 48 in flight, so a pool that grows past 64
    /// keeps its one connection. (When the count came after the callers of a whole read were
    /// resumed, their next commands were counted on top of the ones just answered.)
    @Test func callersBelowThePipelineDepthNeverCountMoreInFlightOrGrowThePool() async throws {
        try await RedisServerProcess.with { server in
            var configuration = try Self.configuration(server, name: "steady")
            configuration.pipelineDepthToGrow = 64
            configuration.maxConnections = 8
            let redis = RedisClient(configuration: configuration, logger: RedisTestEnvironment.logger)
            try await redis.set("steady", to: "v")
            let done = Atomic<Bool>(false)
            let highest = Task {
                var highest = 0
                while !done.load(ordering: .relaxed) {
                    highest = max(highest, redis.commandsInFlight)
                    await Task.yield()
                }
                return highest
            }
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<48 {
                    tasks.addTask {
                        for _ in 0..<400 {
                            let value = try await redis.getString("steady")
                            #expect(value == "v")
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            done.store(true, ordering: .relaxed)
            #expect(await highest.value <= 48)
            #expect(try await Self.connections(named: "steady", on: server) == 1)
            await redis.shutdown()
        }
    }

    @Test func aClientReleasedWithoutShutdownClosesItsConnections() async throws {
        try await RedisServerProcess.with { server in
            do {
                let redis = RedisClient(
                    configuration: try Self.configuration(server, name: "released"),
                    logger: RedisTestEnvironment.logger)
                try await redis.set("k", to: "v")
                #expect(try await Self.connections(named: "released", on: server) == 1)
            }
            // The client is gone: its connections close (a bound for a loaded machine).
            let closed = await eventually(within: .seconds(30)) {
                (try? await Self.connections(named: "released", on: server)) == 0
            }
            #expect(closed)
        }
    }
}
