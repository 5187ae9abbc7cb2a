import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

@Suite struct UpgradeTests {
    let upgradeRequest = "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"

    @Test func upgradeHandsOverTheConnectionIncludingPipelinedBytes() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send(self.upgradeRequest + "early bytes|")
                let first = try await client.read(until: { $0.contains("early bytes|") })
                #expect(first.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
                #expect(first.lowercased().contains("upgrade: echo"))
                #expect(first.hasSuffix("\r\n\r\nearly bytes|"))
                try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                let echoed = try await client.read(until: { $0.hasSuffix("\r\n\r\n") })
                #expect(echoed == "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                client.shutdownOutput()
                let rest = try await client.readUntilClose()
                #expect(rest == "")
            }
        }
    }

    @Test func anUpgradeAfterOrdinaryRequestsOnTheSameConnectionWorks() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n" + self.upgradeRequest)
                let text = try await client.read(until: { $0.contains("101 Switching") && $0.hasSuffix("\r\n\r\n") })
                #expect(parseResponses(text).first?.body == "user 1")
                try await client.send("ping")
                #expect(try await client.read(until: { $0 == "ping" }) == "ping")
            }
        }
    }

    @Test func aRefusedUpgradeIsAnsweredAndTheConnectionClosed() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.exchange(
                "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Refuse: 1\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: a\r\n\r\n",
                port: port
            )
            let responses = parseResponses(text)
            #expect(responses.map(\.body) == ["refused"])
            #expect(responses.first?.header("connection") == "close")
        }
    }

    @Test func upgradingARequestThatDidNotAskIsA500() async throws {
        try await withLiveServer(responder: makeTestRouter()) { port in
            let text = try await RawHTTPClient.exchange(
                "GET /bad-upgrade HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            #expect(parseResponses(text).first?.status == 500)
        }
    }
}

@Suite struct ShutdownTests {
    /// Runs a server in a service group the test shuts down itself.
    func withServer(
        router: Router<BasicContext>,
        shutdown: Duration,
        _ body: @Sendable (Int, ServiceGroup) async throws -> Void
    ) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "strata.test.shutdown")
        logger.logLevel = .trace
        var configuration = try shortTimeouts(shutdown: shutdown)
        configuration.port = 0
        let server = HTTPServer(responder: router, configuration: configuration, logger: logger) { address in
            continuation.yield(address.port ?? 0)
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(port, group)
            try await tasks.waitForAll()
        }
    }

    @Test func gracefulShutdownFinishesInFlightAndClosesIdle() async throws {
        let events = ServerSideEvents()
        let gate = Gate()
        try await self.withServer(router: makeTestRouter(events: events, gate: gate), shutdown: .seconds(20)) {
            port, group in
            try await RawHTTPClient.withConnection(port: port) { idle in
                try await idle.send("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await idle.read(until: { parseResponses($0).count == 1 })
                try await RawHTTPClient.withConnection(port: port) { busy in
                    try await busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
                    #expect(await events.next() == "slow started")
                    await group.triggerGracefulShutdown()
                    // The idle keep-alive connection is closed at once.
                    #expect(try await idle.readUntilClose(timeout: .seconds(5)) == "")
                    gate.open()
                    let text = try await busy.readUntilClose(timeout: .seconds(5))
                    let response = try #require(parseResponses(text).first)
                    #expect(response.body == "slow done")
                    #expect(response.header("connection") == "close")
                }
            }
            // No new request is served: the connection is refused, or (when it raced into the
            // listener's backlog as it closed) closed without an answer.
            let late = try? await RawHTTPClient.exchange(
                "GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port, timeout: .seconds(2))
            #expect(late == nil || late == "", "a request was served after shutdown: \(late ?? "")")
        }
    }

    @Test func shutdownDeadlineClosesRequestsThatDoNotFinish() async throws {
        let events = ServerSideEvents()
        try await self.withServer(router: makeTestRouter(events: events), shutdown: .milliseconds(500)) { port, group in
            try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /never HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(await events.next() == "never started")
                await group.triggerGracefulShutdown()
                // The handler never returns: only the deadline can close the connection (and
                // let the server stop, which `withServer` waits for). No stopwatch: a loaded run
                // is slow, not wrong; a missing deadline never closes at all.
                let text = try await client.readUntilClose(timeout: .seconds(30))
                #expect(!text.contains("HTTP/1.1 200"))
            }
        }
    }
}
