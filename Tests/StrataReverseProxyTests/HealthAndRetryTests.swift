import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataReverseProxy
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

/// Passive ejection, active checks, the circuit breaker, retries, timeouts and connection reuse,
/// with upstreams that die, hang and come back.
@Suite struct HealthAndRetryTests {
    static func get(_ port: Int, _ path: String = "/") async throws -> ParsedResponse {
        try #require(try await rawRequest("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
    }

    @Test func anUpstreamKilledMidLoadIsEjectedAndEveryRequestIsAnsweredOnce() async throws {
        let upstreams = [
            try await RawUpstream.healthy(body: "a"), try await RawUpstream.healthy(body: "b"),
            try await RawUpstream.healthy(body: "c"),
        ]
        defer { Task { for upstream in upstreams { await upstream.stop() } } }
        let victim = upstreams[2]
        var configuration = try configuration(upstreams[0].port, upstreams[1].port, victim.port)
        // Ejected for longer than the load lasts on a slow machine, so the end state is stable.
        configuration.passiveHealthCheck = PassiveHealthCheck(ejectFor: .seconds(120))
        try await withProxy(configuration) { port, proxy in
            let load = Task { try await concurrentRequests(ports: [port], path: "/", count: 600) }
            #expect(await eventually { victim.answered >= 40 })
            await victim.kill()
            let result = try await load.value
            #expect(result.statuses == [200: 600])
            // A retry happens only when no answer came: no request was answered twice.
            #expect(upstreams.map(\.answered).reduce(0, +) == 600)
            let status = try #require(proxy.status().first { $0.upstream.hasSuffix(":\(victim.port)") })
            #expect(status.ejected)
            #expect(status.failures >= 1)
            #expect(!status.available)
            let retries = proxy.status().map(\.retries).reduce(0, +)
            #expect(retries >= 1)
        }
    }

    @Test func aRequestThatMayHaveBeenProcessedIsNotRetriedUnlessIdempotent() async throws {
        // The first upstream reads each request whole, then drops the connection unanswered.
        let dropping = try await RawUpstream.start { pending, _ in pending.hasCompleteRequest ? .close : .wait }
        let healthy = try await RawUpstream.healthy()
        defer {
            Task {
                await dropping.stop(); await healthy.stop()
            }
        }
        var configuration = try configuration(dropping.port, healthy.port)
        configuration.loadBalancing = .first
        configuration.passiveHealthCheck = nil
        try await withProxy(configuration) { port, _ in
            let post = try #require(
                try await rawRequest("POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", port: port))
            #expect(post.status == 502)
            #expect(healthy.connections == 0, "a POST that reached an upstream was sent again")
            let get = try await Self.get(port)
            #expect(get.status == 200)
            #expect(get.body == "ok")
            #expect(dropping.allReceived.contains("GET / HTTP/1.1"))
        }
    }

    @Test func aConnectFailureIsRetriedForAnyMethod() async throws {
        let healthy = try await RawUpstream.healthy()
        defer { Task { await healthy.stop() } }
        var configuration = ReverseProxyConfiguration(
            upstreams: [try deadUpstream(), try Upstream("http://127.0.0.1:\(healthy.port)")])
        configuration.loadBalancing = .first
        try await withProxy(configuration) { port, proxy in
            let post = try #require(
                try await rawRequest("POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", port: port))
            #expect(post.status == 200)
            #expect(healthy.allReceived.contains("POST /pay"))
            #expect(proxy.status().map(\.retries) == [0, 1])
        }
    }

    @Test func aConfiguredStatusIsRetriedOnAnotherUpstream() async throws {
        let busy = try await RawUpstream.start { pending, _ in
            pending.hasCompleteRequest
                ? .reply("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy") : .wait
        }
        let healthy = try await RawUpstream.healthy()
        defer {
            Task {
                await busy.stop(); await healthy.stop()
            }
        }
        var configuration = try configuration(busy.port, healthy.port)
        configuration.loadBalancing = .first
        configuration.retries.retryOnStatuses = [503]
        try await withProxy(configuration) { port, _ in
            #expect(try await Self.get(port).body == "ok")
            // Not for a POST: its body could have been acted on.
            let post = try #require(
                try await rawRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", port: port))
            #expect(post.status == 503)
            #expect(post.body == "busy")
        }
        // With no other upstream to try, the answer is relayed whole, not replaced.
        var alone = ReverseProxyConfiguration(upstreams: [try Upstream("http://127.0.0.1:\(busy.port)")])
        alone.retries.retryOnStatuses = [503]
        try await withProxy(alone) { port, _ in
            let get = try await Self.get(port)
            #expect(get.status == 503)
            #expect(get.body == "busy")
            #expect(busy.answered >= 3)
        }
    }

    @Test func activeChecksTakeAnUpstreamOutAndBringItBack() async throws {
        let first = try await RawUpstream.healthy(body: "first")
        let port1 = first.port
        let second = try await RawUpstream.healthy(body: "second")
        defer { Task { await second.stop() } }
        var configuration = try configuration(port1, second.port)
        configuration.passiveHealthCheck = nil
        configuration.activeHealthCheck = ActiveHealthCheck(
            path: "/health", interval: .milliseconds(100), timeout: .milliseconds(500), passes: 1, fails: 1)
        try await withProxy(configuration, runService: true) { port, proxy in
            #expect(await eventually { first.allReceived.contains("GET /health HTTP/1.1") })
            await first.kill()
            #expect(await eventually { proxy.status().first?.healthy == false })
            for _ in 0..<6 { #expect(try await Self.get(port).body == "second") }
            // Back on the same port: the checks see it and it gets requests again.
            let revived = try await RawUpstream.healthy(port: port1, body: "revived")
            defer { Task { await revived.stop() } }
            #expect(await eventually { proxy.status().first?.healthy == true })
            var bodies: Set<String> = []
            for _ in 0..<6 { bodies.insert(try await Self.get(port).body) }
            #expect(bodies == ["revived", "second"])
        }
    }

    @Test func theCircuitBreakerOpensThenHalfOpensWithOneTrial() async throws {
        let failing = Atomic<Bool>(true)
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            return failing.load(ordering: .relaxed)
                ? .reply("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail")
                : .reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        defer { Task { await upstream.stop() } }
        var configuration = try configuration(upstream.port)
        configuration.passiveHealthCheck = PassiveHealthCheck(maxFailures: 1000, unhealthyStatuses: [500])
        // Open long enough that a loaded machine still sends the next request while it is open.
        configuration.circuitBreaker = CircuitBreaker(
            failureThreshold: 2, openFor: .milliseconds(1500), halfOpenTrials: 1)
        configuration.retries.maxRetries = 0
        try await withProxy(configuration) { port, proxy in
            #expect(try await Self.get(port).status == 500)
            #expect(try await Self.get(port).status == 500)
            // Open: answered at once, the upstream not asked.
            let refused = try await Self.get(port)
            #expect(refused.status == 503)
            #expect(upstream.answered == 2)
            #expect(proxy.status().first?.circuit == "open")
            // Half-open: one trial; it fails, so it opens again.
            #expect(await eventually { proxy.status().first?.circuit == "half-open" })
            #expect(try await Self.get(port).status == 500)
            #expect(try await Self.get(port).status == 503)
            #expect(upstream.answered == 3)
            // The next trial succeeds: closed.
            failing.store(false, ordering: .relaxed)
            #expect(await eventually { proxy.status().first?.circuit == "half-open" })
            #expect(try await Self.get(port).status == 200)
            #expect(proxy.status().first?.circuit == "closed")
            #expect(try await Self.get(port).status == 200)
        }
    }

    @Test func aHostNameIsReResolvedIntoOneUpstreamPerAddress() async throws {
        let upstream = try await RawUpstream.healthy(body: "resolved")
        defer { Task { await upstream.stop() } }
        var configuration = ReverseProxyConfiguration(upstreams: [
            try Upstream("http://localhost:\(upstream.port)/base")
        ])
        configuration.resolveInterval = .milliseconds(100)
        try await withProxy(configuration, runService: true) { port, proxy in
            // localhost is 127.0.0.1 (and ::1 where the host has it): each address is a node.
            #expect(
                await eventually { proxy.status().contains { $0.upstream == "http://127.0.0.1:\(upstream.port)/base" } }
            )
            let response = try await Self.get(port, "/x")
            #expect(response.status == 200)
            #expect(response.body == "resolved")
            // The name stays the Host, and the base path stays.
            #expect(upstream.allReceived.contains("GET /base/x HTTP/1.1\r\nHost: localhost:\(upstream.port)\r\n"))
        }
    }

    @Test func everyUpstreamDownIs503() async throws {
        var configuration = ReverseProxyConfiguration(upstreams: [try deadUpstream(), try deadUpstream()])
        configuration.passiveHealthCheck = PassiveHealthCheck(maxFailures: 1, ejectFor: .seconds(60))
        try await withProxy(configuration) { port, proxy in
            #expect(try await Self.get(port).status == 502)
            #expect(proxy.status().allSatisfy { $0.ejected })
            let fast = try await Self.get(port)
            #expect(fast.status == 503)
            #expect(fast.body == "503 Service Unavailable\n")
        }
    }

    @Test func aStalledBodyHitsTheIdleTimeout() async throws {
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            let declared = pending.contains("/small") ? 20 : 100_000
            return .reply("HTTP/1.1 200 OK\r\nContent-Length: \(declared)\r\n\r\n0123456789")
        }
        defer { Task { await upstream.stop() } }
        var configuration = try configuration(upstream.port)
        configuration.timeouts.idle = .milliseconds(300)
        try await withProxy(configuration) { port, _ in
            // Small enough to be read whole before answering: a 504.
            let small = try await Self.get(port, "/small")
            #expect(small.status == 504)
            // Streaming: the head went out, so the client connection is cut mid-body.
            let text = try await RawHTTPClient.exchange("GET /large HTTP/1.1\r\nHost: a\r\n\r\n", port: port)
            #expect(text.hasPrefix("HTTP/1.1 200 OK"))
            #expect(text.hasSuffix("0123456789"))
            #expect(parseResponses(text).isEmpty)
        }
    }

    @Test func anEndlessStreamHitsTheTotalTimeout() async throws {
        try await withUpstream({ router in
            router.get("/forever") { _, _ in
                ServerResponse(
                    status: .ok, headerFields: [.contentType: "text/event-stream"],
                    body: ResponseBody { writer in
                        while true {
                            try await writer.write(ByteBuffer(string: "data: tick\n\n"))
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    })
            }
        }) { upstream in
            var configuration = try configuration(upstream)
            configuration.timeouts.total = .milliseconds(400)
            try await withProxy(configuration) { port, _ in
                let text = try await RawHTTPClient.exchange("GET /forever HTTP/1.1\r\nHost: a\r\n\r\n", port: port)
                #expect(text.contains("data: tick"))
                #expect(!text.hasSuffix("0\r\n\r\n"))
            }
        }
    }

    @Test func keepAliveConnectionsAreReusedAndStaleOnesReplaced() async throws {
        let upstream = try await RawUpstream.healthy()
        defer { Task { await upstream.stop() } }
        try await withProxy(try configuration(upstream.port)) { port, proxy in
            try await RawHTTPClient.withConnection(port: port) { client in
                for _ in 0..<50 {
                    try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    _ = try await client.read(until: { $0.hasSuffix("ok") })
                }
            }
            #expect(upstream.connections == 1)
            #expect(proxy.status().first?.connectionsOpened == 1)
        }
        // An upstream that closes each connection after answering, without saying so.
        let closing = try await RawUpstream.start { pending, _ in
            pending.hasCompleteRequest ? .replyAndClose("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") : .wait
        }
        defer { Task { await closing.stop() } }
        var configuration = try configuration(closing.port)
        configuration.passiveHealthCheck = nil
        try await withProxy(configuration) { port, _ in
            for _ in 0..<20 { #expect(try await Self.get(port).status == 200) }
            let post = try #require(
                try await rawRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", port: port))
            #expect(post.status == 200)
        }
    }
}
