import HTTPTypes
import Logging
import MetricsTestKit
import NIOCore
import RawStructuredFieldValues
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import RateLimitExample
@testable import StrataRateLimit

/// The middleware: keys, fields, refusals, skips and validation, in process.
@Suite struct RateLimitMiddlewareTests {
    static var logger: Logger {
        var logger = Logger(label: "strata.test.ratelimit")
        logger.logLevel = .critical
        return logger
    }

    static func client(
        _ policies: [QuotaPolicy<BasicContext>], store: some RateLimitStore = MemoryRateLimitStore(),
        configuration: RateLimitConfiguration<BasicContext> = RateLimitConfiguration(),
        peer: String = "198.51.100.20",
        handler: @escaping @Sendable (ServerRequest) -> ServerResponse = { _ in
            ServerResponse(status: .ok, body: .init(string: "ok"))
        }
    ) throws -> TestClient<some HTTPResponder<BasicContext>> {
        let router = Router<BasicContext>()
        router.get("/**") { request, _ in handler(request) }
        let limiter = try RateLimitMiddleware(
            policies: policies, store: store, configuration: configuration, logger: Self.logger)
        var client = TestClient(responder: MiddlewareStack(BasicContext.self) { limiter }.wrapping(router))
        client.logger = Self.logger
        client.remoteAddress = try SocketAddress(ipAddress: peer, port: 40000)
        return client
    }

    // MARK: Keys

    @Test func aSpoofedForwardingHeaderFromAnUntrustedPeerDoesNotChangeTheKey() async throws {
        var configuration = RateLimitConfiguration<BasicContext>(
            trustedProxies: try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor))
        configuration.headersOnAllowedResponses = false
        let policies = [QuotaPolicy<BasicContext>(try .gcra("one", limit: 1, per: .seconds(3600)))]
        let store = MemoryRateLimitStore()
        let direct = try Self.client(policies, store: store, configuration: configuration, peer: "203.0.113.9")
        #expect(try await direct.execute(.get, "/", headerFields: [.xForwardedFor: "192.0.2.1"]).status == .ok)
        // A new forged address each time: still the same peer, still refused.
        let forged = try await direct.execute(.get, "/", headerFields: [.xForwardedFor: "192.0.2.2"])
        #expect(forged.status == .tooManyRequests)
        // Through a trusted proxy, the address it saw is the client's: a new quota each.
        let proxied = try Self.client(policies, store: store, configuration: configuration, peer: "10.1.2.3")
        #expect(try await proxied.execute(.get, "/", headerFields: [.xForwardedFor: "192.0.2.10"]).status == .ok)
        #expect(try await proxied.execute(.get, "/", headerFields: [.xForwardedFor: "192.0.2.11"]).status == .ok)
        #expect(
            try await proxied.execute(.get, "/", headerFields: [.xForwardedFor: "192.0.2.10"]).status
                == .tooManyRequests)
        // The client cannot prepend its way out: the rightmost untrusted address counts.
        #expect(
            try await proxied.execute(.get, "/", headerFields: [.xForwardedFor: "1.1.1.1, 192.0.2.10"]).status
                == .tooManyRequests)
    }

    @Test func ipv6AddressesShareAKeyWithinTheirSlash56() throws {
        func key(_ text: String, prefix: Int = 56) throws -> RateLimitKey {
            RateLimitKey(address: try #require(IPAddress(text)), ipv6Prefix: prefix)
        }
        #expect(try key("2001:db8:ab:cd00::1") == key("2001:db8:ab:cdff:ffff::2"))
        #expect(try key("2001:db8:ab:cd00::1") != key("2001:db8:ab:ce00::1"))
        #expect(try key("2001:db8:ab:cd00::1", prefix: 64) != key("2001:db8:ab:cd01::1", prefix: 64))
        #expect(try key("2001:db8:ab:cd00::1").description == "ip:2001:db8:ab:cd00::/56")
        // From the socket, as the middleware reads it, the same grouping; a mapped IPv4 is IPv4.
        let peer = RateLimitKey(peer: try SocketAddress(ipAddress: "2001:db8:ab:cd12:3456::9", port: 1))
        #expect(try peer == key("2001:db8:ab:cd00::"))
        let mapped = RateLimitKey(peer: try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1))
        #expect(try mapped == key("192.0.2.7"))
        #expect(mapped?.description == "ip:192.0.2.7")
    }

    @Test func ipv6ClientsRotatingInsideTheirBlockShareAQuota() async throws {
        let policies = [QuotaPolicy<BasicContext>(try .gcra("one", limit: 1, per: .seconds(3600)))]
        let store = MemoryRateLimitStore()
        #expect(
            try await Self.client(policies, store: store, peer: "2001:db8:1:100::1").execute(.get, "/").status == .ok)
        let rotated = try await Self.client(policies, store: store, peer: "2001:db8:1:1ff::2").execute(.get, "/")
        #expect(rotated.status == .tooManyRequests)
        let elsewhere = try await Self.client(policies, store: store, peer: "2001:db8:1:200::1").execute(.get, "/")
        #expect(elsewhere.status == .ok)
    }

    @Test func aKeyThatIsMissingMeansThePolicyDoesNotApply() async throws {
        let apiKey = HTTPField.Name("X-API-Key")!
        let policies = [
            QuotaPolicy<BasicContext>(try .gcra("per-key", limit: 1, per: .seconds(3600)), key: .header(apiKey)),
            QuotaPolicy<BasicContext>(try .gcra("per-address", limit: 3, per: .seconds(3600))),
        ]
        let client = try Self.client(policies)
        let anonymous = try await client.execute(.get, "/")
        #expect(anonymous.head.headerFields[RateLimitHeaders.policyName] == "\"per-address\";q=3;w=3600")
        #expect(try await client.execute(.get, "/", headerFields: [apiKey: "k1"]).status == .ok)
        let second = try await client.execute(.get, "/", headerFields: [apiKey: "k1"])
        #expect(second.status == .tooManyRequests)
        #expect(try await client.execute(.get, "/", headerFields: [apiKey: "k2"]).status == .ok)
    }

    // MARK: Fields

    @Test func theFieldsParseAsStructuredFieldListsOfTheDraft() async throws {
        let policies = [
            QuotaPolicy<BasicContext>(try .gcra("burst", limit: 5, per: .seconds(1), burst: 10)),
            QuotaPolicy<BasicContext>(try .slidingWindow("daily", limit: 1000, per: .seconds(86_400))),
        ]
        let client = try Self.client(policies, store: MemoryRateLimitStore(clock: ManualClock()))
        let response = try await client.execute(.get, "/")
        let policy = try Self.parse(try #require(response.head.headerFields[RateLimitHeaders.policyName]))
        #expect(policy.map(\.name) == ["burst", "daily"])
        #expect(policy[0].parameters == ["q": 10, "w": 2])
        #expect(policy[1].parameters == ["q": 1000, "w": 86_400])
        let state = try Self.parse(try #require(response.head.headerFields[RateLimitHeaders.rateLimitName]))
        #expect(state.map(\.name) == ["burst", "daily"])
        #expect(state[0].parameters == ["r": 9, "t": 1])
        #expect(state[1].parameters["r"] == 999)
        #expect(Set(state.flatMap(\.parameters.keys)) == ["r", "t"])
    }

    @Test func thePerRequestWriterMatchesTheLibrarysSerialisation() throws {
        let limits = [
            try QuotaLimits.gcra("burst", limit: 5, per: .seconds(1), burst: 10),
            try QuotaLimits.slidingWindow("a b;c=d", limit: 7, per: .seconds(60)),
        ]
        let names = limits.map { RateLimitHeaders.serialisedName($0.name) }
        for (remaining, reset) in [(0, 0), (9, 1_500_000_000), (123_456, 86_400_000_000_000), (-3, 999)] {
            let outcomes = [
                QuotaOutcome(allowed: true, remaining: remaining, reset: Int64(reset), retryAfter: 0),
                QuotaOutcome(allowed: false, remaining: 0, reset: 1, retryAfter: 1),
            ]
            #expect(
                RateLimitHeaders.rateLimitValue(names: names, outcomes: outcomes, indices: [0, 1])
                    == RateLimitHeaders.rateLimitValue(limits, outcomes))
            // The one-policy writer of the memory fast path, digit by digit.
            for index in limits.indices {
                #expect(
                    RateLimitHeaders.rateLimitValue(
                        name: names[index], remaining: Int64(outcomes[index].remaining),
                        reset: Int64(outcomes[index].resetSeconds))
                        == RateLimitHeaders.rateLimitValue(limits[index...index], [outcomes[index]]))
            }
        }
    }

    /// A member of a structured-field list: a string item with integer parameters, or a failure.
    static func parse(_ value: String) throws -> [(name: String, parameters: [String: Int])] {
        var parser = StructuredFieldValueParser(Array(value.utf8))
        return try parser.parseListFieldValue().map { member in
            guard case .item(let item) = member, case .string(let name) = item.rfc9651BareItem else {
                throw ParseFailure(value: value)
            }
            var parameters: [String: Int] = [:]
            for (key, parameter) in item.rfc9651Parameters {
                guard case .integer(let number) = parameter, number >= 0 else { throw ParseFailure(value: value) }
                parameters[key] = Int(number)
            }
            return (name, parameters)
        }
    }

    struct ParseFailure: Error {
        let value: String
    }

    @Test func retryAfterIsCorrectToTheSecondAndNeverBeforeT() async throws {
        let clock = ManualClock(now: Timestamp(secondsSince1970: 1_700_000_000))
        let policies = [QuotaPolicy<BasicContext>(try .gcra("minute", limit: 1, per: .seconds(60)))]
        let client = try Self.client(policies, store: MemoryRateLimitStore(clock: clock))
        #expect(try await client.execute(.get, "/").status == .ok)
        let first = try await client.execute(.get, "/")
        #expect(first.status == .tooManyRequests)
        #expect(first.head.headerFields[.retryAfter] == "60")
        clock.advance(by: .milliseconds(30_500))
        let second = try await client.execute(.get, "/")
        #expect(second.head.headerFields[.retryAfter] == "30")  // 29.5 s, rounded up
        let state = try Self.parse(try #require(second.head.headerFields[RateLimitHeaders.rateLimitName]))
        #expect(state[0].parameters == ["r": 0, "t": 30])
        #expect(second.head.headerFields[.contentType] == "application/problem+json")
        #expect(second.bodyString.contains("\"status\":429"))
        clock.advance(by: .milliseconds(29_499))
        #expect(try await client.execute(.get, "/").head.headerFields[.retryAfter] == "1")
        clock.advance(by: .milliseconds(1))
        #expect(try await client.execute(.get, "/").status == .ok)
    }

    @Test func legacyFieldsAreOptInAndFieldsCanBeLeftOffAllowedResponses() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.legacyHeaders = true
        configuration.headersOnAllowedResponses = false
        let policies = [
            QuotaPolicy<BasicContext>(try .gcra("small", limit: 2, per: .seconds(60))),
            QuotaPolicy<BasicContext>(try .gcra("large", limit: 50, per: .seconds(60))),
        ]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration)
        let allowed = try await client.execute(.get, "/")
        #expect(allowed.head.headerFields[RateLimitHeaders.rateLimitName] == nil)
        #expect(allowed.head.headerFields[HTTPField.Name("X-RateLimit-Limit")!] == nil)
        _ = try await client.execute(.get, "/")
        let refused = try await client.execute(.get, "/")
        #expect(refused.status == .tooManyRequests)
        #expect(refused.head.headerFields[HTTPField.Name("X-RateLimit-Limit")!] == "2")
        #expect(refused.head.headerFields[HTTPField.Name("X-RateLimit-Remaining")!] == "0")
        #expect(refused.head.headerFields[HTTPField.Name("X-RateLimit-Reset")!] == "30")
        #expect(refused.head.headerFields[RateLimitHeaders.rateLimitName] != nil)
    }

    @Test func oneMemoryPolicyTakesItsOwnPathWithTheSameFields() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.legacyHeaders = true
        let policies = [QuotaPolicy<BasicContext>(try .gcra("solo", limit: 3, per: .seconds(30)))]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration)
        let allowed = try await client.execute(.get, "/")
        #expect(allowed.head.headerFields[RateLimitHeaders.policyName] == "\"solo\";q=3;w=30")
        #expect(allowed.head.headerFields[RateLimitHeaders.rateLimitName] == "\"solo\";r=2;t=10")
        #expect(allowed.head.headerFields[HTTPField.Name("X-RateLimit-Remaining")!] == "2")
        #expect(allowed.head.headerFields[HTTPField.Name("X-RateLimit-Reset")!] == "10")
    }

    @Test func aCustomRefusalKeepsRetryAfterAndTheFields() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.refusalResponse = { refusal in
            ServerResponse(
                status: .tooManyRequests, headerFields: [.contentType: "text/plain"],
                body: .init(string: "slow down (\(refusal.policies.joined()))"))
        }
        let policies = [QuotaPolicy<BasicContext>(try .gcra("one", limit: 1, per: .seconds(10)))]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration)
        _ = try await client.execute(.get, "/")
        let refused = try await client.execute(.get, "/")
        #expect(refused.bodyString == "slow down (one)")
        #expect(refused.head.headerFields[.retryAfter] == "10")
        #expect(refused.head.headerFields[RateLimitHeaders.policyName] == "\"one\";q=1;w=10")
    }

    // MARK: Costs, skips, shadow mode, reset

    @Test func costsComeFromTheRequest() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.cost = { request, _ in request.head.path == "/expensive" ? 5 : 1 }
        let policies = [QuotaPolicy<BasicContext>(try .gcra("units", limit: 10, per: .seconds(3600)))]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration)
        #expect(try await client.execute(.get, "/expensive").status == .ok)
        #expect(try await client.execute(.get, "/expensive").status == .ok)
        #expect(try await client.execute(.get, "/expensive").status == .tooManyRequests)
        #expect(try await client.execute(.get, "/").status == .tooManyRequests)
    }

    @Test func failedResponsesCanBeGivenBack() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.skipFailedResponses = true
        let policies = [QuotaPolicy<BasicContext>(try .gcra("two", limit: 2, per: .seconds(3600)))]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration
        ) { request in
            ServerResponse(status: request.head.path == "/fail" ? .unauthorized : .ok, body: .init(string: ""))
        }
        for _ in 0..<5 { #expect(try await client.execute(.get, "/fail").status == .unauthorized) }
        #expect(try await client.execute(.get, "/").status == .ok)
        #expect(try await client.execute(.get, "/").status == .ok)
        #expect(try await client.execute(.get, "/").status == .tooManyRequests)
    }

    @Test func successfulResponsesCanBeGivenBack() async throws {
        // express-rate-limit's login pattern: only failed attempts count.
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.skipSuccessfulResponses = true
        let policies = [QuotaPolicy<BasicContext>(try .gcra("attempts", limit: 2, per: .seconds(3600)))]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration
        ) { request in
            ServerResponse(status: request.head.path == "/fail" ? .unauthorized : .ok, body: .init(string: ""))
        }
        for _ in 0..<5 { #expect(try await client.execute(.get, "/").status == .ok) }
        #expect(try await client.execute(.get, "/fail").status == .unauthorized)
        #expect(try await client.execute(.get, "/fail").status == .unauthorized)
        #expect(try await client.execute(.get, "/fail").status == .tooManyRequests)
    }

    @Test func skippedRequestsAreNotLimitedAtAll() async throws {
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.skip = { request, _ in request.head.path == "/health" }
        let policies = [QuotaPolicy<BasicContext>(try .gcra("one", limit: 1, per: .seconds(3600)))]
        let client = try Self.client(policies, configuration: configuration)
        for _ in 0..<3 {
            let health = try await client.execute(.get, "/health")
            #expect(health.status == .ok)
            #expect(health.head.headerFields[RateLimitHeaders.rateLimitName] == nil)
        }
        #expect(try await client.execute(.get, "/").status == .ok)
    }

    @Test func shadowModeDecidesReportsAndCountsButNeverRefuses() async throws {
        let metrics = TestMetrics()
        var configuration = RateLimitConfiguration<BasicContext>()
        configuration.metricsFactory = metrics
        let policies = [
            QuotaPolicy<BasicContext>(try .gcra("trial", limit: 2, per: .seconds(3600)), shadow: true),
            QuotaPolicy<BasicContext>(try .gcra("real", limit: 100, per: .seconds(3600))),
        ]
        let client = try Self.client(
            policies, store: MemoryRateLimitStore(clock: ManualClock()), configuration: configuration)
        var last: TestResponse?
        for _ in 0..<5 {
            last = try await client.execute(.get, "/")
            #expect(last?.status == .ok)
        }
        let state = try Self.parse(try #require(last?.head.headerFields[RateLimitHeaders.rateLimitName]))
        #expect(state[0].parameters["r"] == 0)
        #expect(state[1].parameters["r"] == 95)
        let shadowRefused = try metrics.expectCounter(
            "strata_ratelimit_decisions_total", [("policy", "trial"), ("result", "shadow_refused")])
        #expect(shadowRefused.totalValue == 3)
        let allowed = try metrics.expectCounter(
            "strata_ratelimit_decisions_total", [("policy", "real"), ("result", "allowed")])
        #expect(allowed.totalValue == 5)
    }

    @Test func statusAndResetPerKey() async throws {
        let policies = [QuotaPolicy<BasicContext>(try .gcra("one", limit: 1, per: .seconds(3600)))]
        let store = MemoryRateLimitStore()
        let limiter = try RateLimitMiddleware(policies: policies, store: store, logger: Self.logger)
        let client = try Self.client(policies, store: store, peer: "192.0.2.44")
        #expect(try await client.execute(.get, "/").status == .ok)
        let key = RateLimitKey(address: try #require(IPAddress("192.0.2.44")))
        #expect(try await limiter.status(of: key).first?.outcome.allowed == false)
        #expect(try await client.execute(.get, "/").status == .tooManyRequests)
        try await limiter.reset(key)
        #expect(try await limiter.status(of: key).first?.outcome.allowed == true)
        #expect(try await client.execute(.get, "/").status == .ok)
    }

    /// 1,000 requests from one client over real sockets (Python httpx, 100 at a time) to the
    /// example's `/api` with a quota of 100 in memory: exactly 100 pass, every answer has the field.
    @Test func aThousandRequestsThroughTheServerAdmitExactlyTheLimit() async throws {
        let policies = [QuotaPolicy<BasicContext>(try .gcra("daily", limit: 100, per: .seconds(86_400)))]
        let responder = try buildResponder(store: MemoryRateLimitStore(), policies: policies, logger: Self.logger)
        try await withLiveServer(responder: responder, logger: Self.logger) { port in
            let result = try await concurrentRequests(ports: [port], path: "/api", count: 1000)
            #expect(result == ConcurrentRequestsResult(statuses: [200: 100, 429: 900], withRateLimitField: 1000))
        }
    }

    // MARK: Validation

    @Test func aKeyReadFromAForwardingHeaderIsRefusedWithTheFix() throws {
        let limits = try QuotaLimits.gcra("x", limit: 1, per: .seconds(1))
        do {
            _ = try RateLimitMiddleware<BasicContext>(policies: [QuotaPolicy(limits, key: .header(.xForwardedFor))])
            Issue.record("a key from X-Forwarded-For was accepted")
        } catch {
            #expect(error.description.contains("lets any client pick its own key"))
            #expect(error.description.contains("trustedProxies"))
        }
        #expect(throws: RateLimitConfigurationError.self) {
            try RateLimitMiddleware<BasicContext>(policies: [
                QuotaPolicy(limits, key: .header(HTTPField.Name("X-Real-IP")!))
            ])
        }
        #expect(throws: RateLimitConfigurationError.self) {
            try RateLimitMiddleware<BasicContext>(policies: [QuotaPolicy(limits), QuotaPolicy(limits)])
        }
        #expect(throws: RateLimitConfigurationError.self) { try RateLimitMiddleware<BasicContext>(policies: []) }
        #expect(throws: RateLimitConfigurationError.self) {
            try RateLimitMiddleware<BasicContext>(policies: [QuotaPolicy(limits, key: .clientAddress(ipv6Prefix: 0))])
        }
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
