import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataCORS
import StrataCompression
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

#if Hummingbird
import Hummingbird
import HummingbirdCore
import StrataHummingbird
#endif

/// The hosts a Strata stack runs on: the same routes and the same middlewares on each.
enum Host: String, CaseIterable, Sendable, CustomStringConvertible {
    case strataServer
    #if Hummingbird
    case hummingbird
    #endif
    #if Vapor
    case vapor
    #endif

    var description: String { self.rawValue }

    /// Whether a streamed body of unknown length can be transformed. Vapor keeps its streams
    /// behind its API, so they pass through untouched (documented in Docs/Adapters.md).
    var transformsUnknownLengthStreams: Bool {
        #if Vapor
        if self == .vapor { return false }
        #endif
        return true
    }

    /// Whether the host's own server answers a request the client followed with its FIN.
    /// Vapor 4's server closes when it reads the FIN, before any `async` route or middleware
    /// answers, and has no setting for it: see `VaporAdapterTests`.
    var answersAfterTheClientsFIN: Bool {
        #if Vapor
        if self == .vapor { return false }
        #endif
        return true
    }
}

/// A ~100 KiB text page, a small one, and a streamed one: what the routes serve.
let bigPage = ByteBuffer(
    string: (0..<2000).map { "<p>row \($0): {\"id\": \($0), \"tags\": [\"a\", \"b\"]}</p>\n" }.joined())
let smallPage = ByteBuffer(string: "<p>small</p>\n")

func corsConfiguration() -> CORSConfiguration {
    var configuration = CORSConfiguration(allowedOrigins: ["https://app.example"])
    configuration.allowedMethods = ["GET", "PUT"]
    configuration.allowedRequestHeaders = ["X-Custom"]
    configuration.exposedHeaders = ["X-Exposed"]
    return configuration
}

/// Runs `body` with the port of `host` serving the routes behind CORS and compression.
func withHost(_ host: Host, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    switch host {
    case .strataServer:
        let router = StrataServer.Router<BasicContext>()
        router.get("/big") { _, _ in
            ServerResponse(status: .ok, headerFields: [.contentType: "text/html"], body: .init(buffer: bigPage))
        }
        router.get("/small") { _, _ in
            ServerResponse(status: .ok, headerFields: [.contentType: "text/html"], body: .init(buffer: smallPage))
        }
        for (path, length) in [("/stream", Optional(bigPage.readableBytes)), ("/chunked", nil)] {
            router.get(path) { _, _ in
                ServerResponse(
                    status: .ok, headerFields: [.contentType: "text/html"],
                    body: Strata.ResponseBody(contentLength: length) { writer in
                        var rest = bigPage
                        while let chunk = rest.readSlice(length: min(8192, rest.readableBytes)), chunk.readableBytes > 0
                        {
                            try await writer.write(chunk)
                        }
                    })
            }
        }
        let stack = try MiddlewareStack(BasicContext.self) {
            try CORSMiddleware<BasicContext>(configuration: corsConfiguration())
            try ResponseCompressionMiddleware<BasicContext>()
        }
        try await withLiveServer(responder: stack.wrapping(router)) { port in try await body(port) }
    #if Hummingbird
    case .hummingbird:
        let router = Hummingbird.Router(context: BasicRequestContext.self)
        let stack = try MiddlewareStack(HummingbirdContext<BasicRequestContext>.self) {
            try CORSMiddleware<HummingbirdContext<BasicRequestContext>>(configuration: corsConfiguration())
            try ResponseCompressionMiddleware<HummingbirdContext<BasicRequestContext>>()
        }
        router.add(middleware: StrataMiddleware(stack))
        router.get("/big") { _, _ in
            HummingbirdCore.Response(
                status: .ok, headers: [.contentType: "text/html"], body: .init(byteBuffer: bigPage))
        }
        router.get("/small") { _, _ in
            HummingbirdCore.Response(
                status: .ok, headers: [.contentType: "text/html"], body: .init(byteBuffer: smallPage))
        }
        for (path, length) in [("/stream", Optional(bigPage.readableBytes)), ("/chunked", nil)] {
            router.get(RouterPath(path)) { _, _ in
                HummingbirdCore.Response(
                    status: .ok, headers: [.contentType: "text/html"],
                    body: HummingbirdCore.ResponseBody(contentLength: length) { writer in
                        var rest = bigPage
                        while let chunk = rest.readSlice(length: min(8192, rest.readableBytes)), chunk.readableBytes > 0
                        {
                            try await writer.write(chunk)
                        }
                        try await writer.finish(nil)
                    })
            }
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "strata.test.hummingbird")
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await body(port)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    #endif
    #if Vapor
    case .vapor:
        try await withVaporHost(body)
    #endif
    }
}

/// `curl -sS -D - ...`: the head (lowercased) and the body, decoded when `--compressed`.
func curl(_ arguments: [String], port: Int, path: String) async throws -> (head: String, body: String) {
    let output = try await ExternalProcess.run(
        try ExternalProcess.curl(), ["-sS", "-D", "-"] + arguments + ["http://127.0.0.1:\(port)\(path)"])
    guard let end = output.stdout.range(of: "\r\n\r\n") else {
        throw ExternalProcess.Failure(description: "no response: \(output.stderr)")
    }
    return (String(output.stdout[..<end.lowerBound]).lowercased(), String(output.stdout[end.upperBound...]))
}

/// One set of expectations, every host.
@Suite struct SharedBehaviourTests {
    @Test(arguments: Host.allCases)
    func corsAnswersPreflightsAndDecoratesResponses(_ host: Host) async throws {
        try await withHost(host) { port in
            let preflight = try await curl(
                [
                    "-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: PUT",
                    "-H", "Access-Control-Request-Headers: x-custom",
                ], port: port, path: "/small")
            #expect(preflight.head.hasPrefix("http/1.1 204"), "\(host): \(preflight.head)")
            #expect(preflight.head.contains("access-control-allow-origin: https://app.example"))
            #expect(preflight.head.contains("access-control-allow-methods: put"))
            #expect(preflight.head.contains("access-control-allow-headers: x-custom"))

            let refused = try await curl(
                ["-X", "OPTIONS", "-H", "Origin: https://evil.example", "-H", "Access-Control-Request-Method: PUT"],
                port: port, path: "/small")
            #expect(refused.head.hasPrefix("http/1.1 403"), "\(host): \(refused.head)")
            #expect(!refused.head.contains("access-control-allow-origin"))

            let actual = try await curl(["-H", "Origin: https://app.example"], port: port, path: "/small")
            #expect(actual.head.hasPrefix("http/1.1 200"))
            #expect(actual.head.contains("access-control-allow-origin: https://app.example"))
            #expect(actual.head.contains("access-control-expose-headers: x-exposed"))
            #expect(actual.head.contains("vary: origin") || actual.head.contains("vary: accept-encoding, origin"))
            #expect(actual.body == String(buffer: smallPage))

            let missing = try await curl(["-H", "Origin: https://app.example"], port: port, path: "/nowhere")
            #expect(missing.head.hasPrefix("http/1.1 404"), "\(host): \(missing.head)")
            #expect(missing.head.contains("access-control-allow-origin: https://app.example"), "\(host): 404s too")
        }
    }

    @Test(arguments: Host.allCases)
    func compressionNegotiatesStreamsAndVaries(_ host: Host) async throws {
        try await withHost(host) { port in
            for path in ["/big", "/stream"] {
                let gzip = try await curl(["--compressed", "-H", "Accept-Encoding: gzip"], port: port, path: path)
                #expect(gzip.head.contains("content-encoding: gzip"), "\(host) \(path): \(gzip.head)")
                #expect(gzip.head.contains("vary: accept-encoding"), "\(host) \(path)")
                let same = gzip.body == String(buffer: bigPage)  // outside #expect: no diff of 100 KiB
                #expect(same, "\(host) \(path): \(gzip.body.utf8.count) bytes decoded")

                let sizes = try await ExternalProcess.run(
                    try ExternalProcess.curl(),
                    [
                        "-sS", "-o", "/dev/null", "-w", "%{size_download}", "-H", "Accept-Encoding: gzip",
                        "http://127.0.0.1:\(port)\(path)",
                    ])
                #expect(
                    (Int(sizes.stdout) ?? .max) < bigPage.readableBytes / 4, "\(host) \(path): compressed on the wire")
            }
            // A stream of unknown length: compressed where the host lets it be read, and
            // otherwise passed through whole, never truncated.
            let chunked = try await curl(["--compressed", "-H", "Accept-Encoding: gzip"], port: port, path: "/chunked")
            #expect(
                chunked.head.contains("content-encoding: gzip") == host.transformsUnknownLengthStreams,
                "\(host): \(chunked.head)")
            let whole = chunked.body == String(buffer: bigPage)
            #expect(whole, "\(host) /chunked: \(chunked.body.utf8.count) bytes")

            let identity = try await curl([], port: port, path: "/big")
            #expect(!identity.head.contains("content-encoding"), "\(host)")
            #expect(identity.head.contains("vary: accept-encoding"), "\(host)")
            let small = try await curl(["-H", "Accept-Encoding: gzip"], port: port, path: "/small")
            #expect(!small.head.contains("content-encoding"), "\(host): under the minimum size")
        }
    }

    /// A client that half-closes after its request (`printf ... | nc -N`) still gets its answer,
    /// through the stack, on every host: the adapters need nothing of their own for it.
    @Test(arguments: Host.allCases.filter(\.answersAfterTheClientsFIN))
    func aRequestFollowedByTheClientsFINIsAnswered(_ host: Host) async throws {
        try await withHost(host) { port in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /small HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n\r\n")
                client.shutdownOutput()
                return try await client.readUntilClose()
            }
            let responses = parseResponses(text)
            #expect(responses.map(\.status) == [200], "\(host): \(text)")
            #expect(responses.first?.body == String(buffer: smallPage), "\(host)")
            #expect(responses.first?.header("access-control-allow-origin") == "https://app.example", "\(host)")
        }
    }
}

#if Hummingbird
/// A Strata middleware that answers every request with an upgrade, as a WebSocket route would.
struct UpgradeEverything<Context: MiddlewareContext>: HTTPMiddleware {
    func handle(
        _ request: ServerRequest, context: Context, next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var response = ServerResponse(status: .switchingProtocols, headerFields: [.upgrade: "echo"])
        response.upgrade = ConnectionUpgrade { _ in }
        return response
    }
}

@Suite struct HummingbirdAdapterLimitTests {
    /// Hummingbird upgrades in its pipeline, before routing: a Strata upgrade cannot be honoured
    /// and gets a 501 instead of a 101 that would leave the client hanging.
    @Test func aStrataUpgradeInsideHummingbirdIsAnswered501() async throws {
        let router = Hummingbird.Router(context: BasicRequestContext.self)
        router.add(middleware: StrataMiddleware(UpgradeEverything<HummingbirdContext<BasicRequestContext>>()))
        router.get("/") { _, _ in "not reached" }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "strata.test.hummingbird")
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let answer = try await curl(["-H", "Upgrade: echo", "-H", "Connection: upgrade"], port: port, path: "/")
            #expect(answer.head.hasPrefix("http/1.1 501"), "\(answer.head)")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
#endif
