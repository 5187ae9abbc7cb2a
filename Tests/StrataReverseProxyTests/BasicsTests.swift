import Foundation
import HTTPTypes
import InMemoryTracing
import Logging
import NIOCore
import Strata
import StrataReverseProxy
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing
import Tracing

/// Paths, hooks, hop-by-hop fields, forwarding fields and error answers, over real sockets.
@Suite struct BasicsTests {
    @Test func pathsAndQueriesJoinBehindTheBasePath() async throws {
        try await withEchoUpstream { upstream in
            var configuration = ReverseProxyConfiguration(upstreams: [
                try Upstream("http://127.0.0.1:\(upstream)/base/")
            ])
            configuration.host = .upstream
            try await withProxy(configuration) { port, _ in
                let response = try #require(
                    try await rawRequest("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: front.example\r\n\r\n", port: port))
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("GET /base/a/b?x=1&y=%20\n"))
                #expect(echoed(response.body)["host"] == ["127.0.0.1:\(upstream)"])
                #expect(echoed(response.body)["x-forwarded-host"] == ["front.example"])
                #expect(echoed(response.body)["x-forwarded-proto"] == ["http"])
            }
        }
    }

    @Test func anAbsoluteFormTargetGivesTheAuthorityAndTheNormalisedPath() async throws {
        try await withEchoUpstream { upstream in
            var configuration = try configuration(upstream)
            configuration.host = .preserve
            let seen = SeenPaths()
            try await withProxy(configuration, rewrite: { request in seen.add(request.inbound.path ?? "") }) {
                port, _ in
                let response = try #require(
                    try await rawRequest(
                        "GET http://target.example:81/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n", port: port))
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("GET /p?q=1\n"))
                #expect(echoed(response.body)["host"] == ["target.example:81"])
                #expect(seen.paths == ["/p?q=1"])
            }
        }
    }

    @Test func hopByHopFieldsAreRemovedBothWaysBeforeTheProxyAddsItsOwn() async throws {
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            let body = pending.replacingOccurrences(of: "\r\n", with: "\n")
            return .reply(
                "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n"
                    + "Proxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-Kept: k\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
        }
        defer { Task { await upstream.stop() } }
        try await withProxy(try configuration(upstream.port)) { port, _ in
            let response = try #require(
                try await rawRequest(
                    "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For, X-Custom, keep-alive\r\n"
                        + "X-Custom: c\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n"
                        + "TE: trailers, deflate\r\nX-Forwarded-For: 192.0.2.77\r\nX-End: e\r\n\r\n",
                    port: port))
            #expect(response.status == 200)
            let sent = response.body.lowercased()
            for absent in ["x-custom", "keep-alive", "proxy-", "192.0.2.77", "deflate", "connection: x-forwarded-for"] {
                #expect(!sent.contains(absent), "upstream saw \(absent)")
            }
            #expect(sent.contains("x-forwarded-for: 127.0.0.1\n"))
            #expect(sent.contains("te: trailers\n"))
            #expect(sent.contains("x-end: e\n"))
            // The response's hop-by-hop fields stop at the proxy.
            #expect(response.header("X-Secret") == nil)
            #expect(response.header("Keep-Alive") == nil)
            #expect(response.header("Proxy-Authenticate") == nil)
            #expect(response.header("Upgrade") == nil)
            #expect(response.header("X-Kept") == "k")
        }
    }

    @Test func aHeadAnswerKeepsItsContentLengthAndABodyIsFramedOnce() async throws {
        // The upstream parser leaves a body's Content-Length out (the server frames the body
        // itself) but keeps the one of an answer without a body.
        let upstream = try await RawUpstream.start { pending, _ in
            guard pending.hasCompleteRequest else { return .wait }
            if pending.hasPrefix("HEAD") {
                return .reply("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Kind: head\r\n\r\n")
            }
            return .reply(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: x-private\r\nX-Private: p\r\nX-Kind: get\r\n\r\nhello"
            )
        }
        defer { Task { await upstream.stop() } }
        try await withProxy(try configuration(upstream.port)) { port, _ in
            let reply = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
                return try await client.read(
                    until: { parseResponses($0, headRequests: 1).count >= 1 }, timeout: .seconds(20))
            }
            let head = try #require(parseResponses(reply, headRequests: 1).first)
            #expect(head.status == 200)
            #expect(head.header("X-Kind") == "head")
            #expect(head.headers.filter { $0.0.lowercased() == "content-length" }.map(\.1) == ["1234"])
            #expect(head.body.isEmpty)

            let get = try #require(try await rawRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(get.header("X-Kind") == "get")
            #expect(get.headers.filter { $0.0.lowercased() == "content-length" }.map(\.1) == ["5"])
            #expect(get.header("Transfer-Encoding") == nil)
            #expect(get.header("X-Private") == nil)
            #expect(get.body == "hello")
        }
    }

    @Test func forwardingFieldsOfAnUntrustedPeerAreReplacedAndATrustedOnesExtended() async throws {
        try await withEchoUpstream { upstream in
            var configuration = try configuration(upstream)
            configuration.forwarding = .all
            configuration.via = "strata-test"
            let request =
                "GET / HTTP/1.1\r\nHost: site.example\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: evil.example\r\n"
                + "X-Forwarded-Proto: https\r\nForwarded: for=192.0.2.1\r\n\r\n"
            try await withProxy(configuration) { port, _ in
                let response = try #require(try await rawRequest(request, port: port))
                let fields = echoed(response.body)
                #expect(fields["x-forwarded-for"] == ["127.0.0.1"])
                #expect(fields["x-forwarded-host"] == ["site.example"])
                #expect(fields["x-forwarded-proto"] == ["http"])
                #expect(fields["forwarded"] == ["for=127.0.0.1;host=site.example;proto=http"])
                #expect(fields["via"] == ["1.1 strata-test"])
                #expect(response.header("Via") == "1.1 strata-test")
            }
            configuration.trustedProxies = try TrustedProxies(["127.0.0.1/32"], header: .xForwardedFor)
            try await withProxy(configuration) { port, _ in
                let response = try #require(try await rawRequest(request, port: port))
                let fields = echoed(response.body)
                #expect(fields["x-forwarded-for"] == ["192.0.2.1, 127.0.0.1"])
                #expect(fields["x-forwarded-host"] == ["evil.example"])
                #expect(fields["x-forwarded-proto"] == ["https"])
                #expect(fields["forwarded"] == ["for=192.0.2.1, for=127.0.0.1;host=site.example;proto=http"])
            }
        }
    }

    @Test func hooksRewriteTheRequestAndTheResponse() async throws {
        try await withEchoUpstream { upstream in
            try await withProxy(
                try configuration(upstream),
                rewrite: { request in
                    request.stripPrefix("/api")
                    request.outbound.headerFields[.authorization] = nil
                    request.outbound.headerFields[HTTPField.Name("X-Injected")!] = "a\r\nX-Evil: 1"
                },
                modifyResponse: { response, request in
                    response.headerFields[HTTPField.Name("X-Inbound-Path")!] = request.inbound.path
                    response.headerFields[.server] = nil
                }
            ) { port, _ in
                let response = try #require(
                    try await rawRequest(
                        "GET /api/users?id=7 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n", port: port))
                #expect(response.body.hasPrefix("GET /users?id=7\n"))
                #expect(!response.body.lowercased().contains("authorization"))
                // A value with CR LF cannot split the request: it is one field.
                #expect(echoed(response.body)["x-evil"] == nil)
                #expect(response.header("X-Inbound-Path") == "/api/users?id=7")
                let untouched = try #require(try await rawRequest("GET /apix HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
                #expect(untouched.body.hasPrefix("GET /apix\n"))
            }
        }
    }

    @Test func aConnectionFailureIs502AndSaysNothingOfTheCause() async throws {
        var configuration = ReverseProxyConfiguration(upstreams: [try deadUpstream()])
        configuration.retries.maxRetries = 0
        let recorder = LogRecorder()
        try await withProxy(configuration, logger: recorder.logger(level: .warning)) { port, _ in
            let response = try #require(try await rawRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(response.status == 502)
            #expect(response.body == "502 Bad Gateway\n")
            #expect(
                recorder.messages(atLeast: .warning).contains {
                    $0.contains("proxy request failed") && $0.contains("connect")
                })
        }
    }

    @Test func aHangingUpstreamIs504AtTheResponseHeadTimeout() async throws {
        let upstream = try await RawUpstream.start { _, _ in .hang }
        defer { Task { await upstream.stop() } }
        var configuration = try configuration(upstream.port)
        configuration.timeouts.responseHead = .milliseconds(300)
        configuration.retries.maxRetries = 0
        try await withProxy(configuration) { port, _ in
            let response = try #require(try await rawRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(response.status == 504)
            #expect(response.body == "504 Gateway Timeout\n")
        }
    }

    @Test func aCustomErrorHandlerAnswersFailures() async throws {
        try await withProxy(
            ReverseProxyConfiguration(upstreams: [try deadUpstream()]),
            errorHandler: { error, _ in
                ServerResponse(status: .serviceUnavailable, body: ResponseBody(string: "down: \(error.kind.rawValue)"))
            }
        ) { port, _ in
            let response = try #require(try await rawRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(response.status == 503)
            #expect(response.body == "down: connect")
        }
    }

    @Test func requestBodiesAreForwardedWithFreshFraming() async throws {
        try await withEchoUpstream { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                let fixed = try #require(
                    try await rawRequest(
                        "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", port: port))
                #expect(echoed(fixed.body)["body"] == ["hello"])
                #expect(echoed(fixed.body)["content-length"] == ["5"])
                let chunked = try #require(
                    try await rawRequest(
                        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                        port: port))
                #expect(echoed(chunked.body)["body"] == ["abcde"])
                #expect(echoed(chunked.body)["transfer-encoding"] == ["chunked"])
            }
        }
    }

    @Test func eachAttemptIsAClientSpanWhoseContextTheUpstreamReceives() async throws {
        let tracer = InMemoryTracer()
        try await withEchoUpstream { upstream in
            try await withProxy(try configuration(upstream), tracer: tracer) { port, _ in
                let response = try #require(try await rawRequest("GET /traced HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
                let span = try #require(tracer.finishedSpans.first)
                #expect(span.kind == .client)
                #expect(span.operationName == "GET")
                #expect(span.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
                #expect(span.attributes["url.path"]?.toSpanAttribute() == .string("/traced"))
                // The span's identity went upstream in the request's fields.
                let sent = echoed(response.body)
                #expect(sent[InMemoryTracer.spanIDKey] == [span.spanContext.spanID])
                #expect(sent[InMemoryTracer.traceIDKey] == [span.spanContext.traceID])
            }
        }
    }

    @Test func connectIsRefusedAndTheConfigurationIsValidated() async throws {
        try await withEchoUpstream { upstream in
            try await withProxy(try configuration(upstream)) { port, _ in
                let response = try #require(
                    try await rawRequest("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", port: port))
                #expect(response.status == 405)
            }
        }
        var bad = ReverseProxyConfiguration(upstreams: [])
        bad.maxConnectionsPerUpstream = 0
        bad.timeouts.connect = .zero
        #expect(throws: ReverseProxyConfigurationError.self) { try bad.validate() }
        #if !TLS
        // Without the TLS trait an https upstream is refused at init, not at the first request.
        #expect(throws: UpstreamURLError.self) { try Upstream("https://secure.example") }
        #endif
        #expect(throws: UpstreamURLError.self) { try Upstream("http://host:99999") }
        #expect(try Upstream("unix:/run/app.sock").address == .unixSocket(path: "/run/app.sock"))
        #expect(try Upstream("http://[::1]:8080/x").authority == "[::1]:8080")
    }
}

final class SeenPaths: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ path: String) { self.state.withLock { $0.append(path) } }
    var paths: [String] { self.state.withLock { $0 } }
}
