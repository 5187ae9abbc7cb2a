#if Vapor
import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataCORS
import StrataCompression
import StrataTestSupport
import StrataTesting
import StrataVapor
import StrataWebSocket
import Testing
import Vapor

/// A Vapor 4 application on a loopback port, running `body` with the port, shut down after.
func withVaporApp(
    _ configure: (Vapor.Application) throws -> Void,
    _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    let app = try await Vapor.Application.make(.testing)
    app.logger.logLevel = .notice
    do {
        try configure(app)
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        let port = try #require(app.http.server.shared.localAddress?.port)
        try await body(port)
    } catch {
        await app.server.shutdown()
        try await app.asyncShutdown()
        throw error
    }
    await app.server.shutdown()
    try await app.asyncShutdown()
}

/// The shared routes behind StrataCORS and StrataCompression, on Vapor.
func withVaporHost(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    try await withVaporApp(
        { app in
            let stack = try MiddlewareStack(VaporContext.self) {
                try CORSMiddleware<VaporContext>(configuration: corsConfiguration())
                try ResponseCompressionMiddleware<VaporContext>()
            }
            app.middleware.use(StrataVaporMiddleware(stack))
            let html: HTTPHeaders = ["Content-Type": "text/html"]
            app.get("big") { _ in Vapor.Response(status: .ok, headers: html, body: .init(buffer: bigPage)) }
            app.get("small") { _ in Vapor.Response(status: .ok, headers: html, body: .init(buffer: smallPage)) }
            // A Vapor stream that declares its length: collected (within the bound) and compressed.
            app.get("stream") { _ in
                Vapor.Response(
                    status: .ok, headers: html,
                    body: .init(
                        managedAsyncStream: { writer in try await writeBigPage(to: writer) },
                        count: bigPage.readableBytes))
            }
            // A Vapor stream of unknown length: Vapor does not let it be read, so it passes through.
            app.get("chunked") { _ in
                Vapor.Response(
                    status: .ok, headers: html,
                    body: .init(managedAsyncStream: { writer in try await writeBigPage(to: writer) }))
            }
        }, body)
}

func writeBigPage(to writer: any AsyncBodyStreamWriter) async throws {
    var rest = bigPage
    while let chunk = rest.readSlice(length: min(8192, rest.readableBytes)), chunk.readableBytes > 0 {
        try await writer.write(.buffer(chunk))
    }
}

/// Vapor-only behaviour: what its API makes different, and upgrades.
@Suite struct VaporAdapterTests {
    /// Vapor's own server closes the connection when it reads a client's FIN: a response that
    /// is not written by then, from any `async` route or `AsyncMiddleware` (so from the Strata
    /// adapter too), is never sent. Vapor 4 has no setting for remote half-closure, so the
    /// adapter cannot change this; the shared half-close test skips Vapor for it.
    @Test func vaporClosesOnTheClientsFINBeforeAnAsyncRouteAnswers() async throws {
        let gate = Gate()
        try await withVaporApp({ app in
            app.get("gated") { _ async -> String in
                await gate.wait()
                return "late"
            }
        }) { port in
            let text = try await RawHTTPClient.withConnection(port: port) { client in
                try await client.send("GET /gated HTTP/1.1\r\nHost: a\r\n\r\n")
                client.shutdownOutput()
                return try await client.readUntilClose()
            }
            // Vapor closed while the route was still waiting: nothing was answered.
            #expect(text.isEmpty, "\(text)")
            gate.open()
            let answered = try await RawHTTPClient.exchange(
                "GET /gated HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", port: port)
            #expect(parseResponses(answered).map(\.body) == ["late"])
        }
    }

    /// A Strata middleware that replaces the request body, the way request decompression does.
    struct UppercaseBody: HTTPMiddleware {
        func handle(
            _ request: ServerRequest, context: VaporContext,
            next: (ServerRequest, VaporContext) async throws -> ServerResponse
        ) async throws -> ServerResponse {
            var request = request
            let original = request.body
            request.body = Strata.RequestBody(
                stream: AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                    let task = Task {
                        do {
                            for try await chunk in original {
                                continuation.yield(ByteBuffer(string: String(buffer: chunk).uppercased()))
                            }
                            continuation.finish()
                        } catch {
                            continuation.finish(throwing: error)
                        }
                    }
                    continuation.onTermination = { _ in task.cancel() }
                })
            request.headerFields[.init("X-Rewritten")!] = "yes"
            return try await next(request, context)
        }
    }

    @Test func requestBodiesAndHeadsReachVaporAsTheStackLeftThem() async throws {
        try await withVaporApp({ app in
            app.routes.defaultMaxBodySize = 1024
            app.grouped(StrataVaporMiddleware(UppercaseBody())).on(.POST, "rewritten", body: .collect) { req in
                "\(req.headers.first(name: "X-Rewritten") ?? "-") \(req.body.string ?? "")"
            }
            // Untouched by the stack: Vapor's own request and streamed body arrive.
            struct Nothing: HTTPMiddleware {
                func handle(
                    _ request: ServerRequest, context: VaporContext,
                    next: (ServerRequest, VaporContext) async throws -> ServerResponse
                ) async throws -> ServerResponse { try await next(request, context) }
            }
            app.grouped(StrataVaporMiddleware(Nothing())).on(.POST, "count", body: .stream) {
                req async throws -> String in
                var count = 0
                for try await chunk in req.body { count += chunk.readableBytes }
                return "\(count)"
            }
        }) { port in
            let rewritten = try await curl(["--data-binary", "hello vapor"], port: port, path: "/rewritten")
            #expect(rewritten.head.hasPrefix("http/1.1 200"), "\(rewritten.head)")
            #expect(rewritten.body == "yes HELLO VAPOR")

            // Over the bound the adapter collects a replaced body within: 413, nothing truncated.
            let large = String(repeating: "x", count: 4096)
            let refused = try await curl(["--data-binary", large], port: port, path: "/rewritten")
            #expect(refused.head.hasPrefix("http/1.1 413"), "\(refused.head)")

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-vapor-\(port).bin")
            try Data(repeating: 0x79, count: 3 << 20).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let counted = try await ExternalProcess.run(
                try ExternalProcess.curl(),
                ["-sS", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/count"])
            #expect(counted.stdout == "\(3 << 20)", "a 3 MiB streamed body: \(counted.stdout) \(counted.stderr)")
        }
    }

    /// A body that throws after its head went out aborts the connection: the client sees an
    /// incomplete response, never a short one that looks whole.
    @Test func aStrataBodyFailingMidStreamAbortsTheResponse() async throws {
        struct Failing: HTTPMiddleware {
            func handle(
                _ request: ServerRequest, context: VaporContext,
                next: (ServerRequest, VaporContext) async throws -> ServerResponse
            ) async throws -> ServerResponse {
                struct Broken: Error {}
                return ServerResponse(
                    status: .ok, headerFields: [.contentType: "text/plain"],
                    body: Strata.ResponseBody { writer in
                        try await writer.write(ByteBuffer(string: "partial"))
                        throw Broken()
                    })
            }
        }
        try await withVaporApp({ app in
            app.middleware.use(StrataVaporMiddleware(Failing()))
            app.get("x") { _ in "not reached" }
        }) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(), ["-sS", "http://127.0.0.1:\(port)/x"])
            #expect(!output.stderr.isEmpty, "curl reports the broken transfer: \(output.stdout)")
        }
    }

    /// An error middleware of the app's own, added after (inside) the adapter, renders Vapor's
    /// errors its way, and the Strata stack still decorates the result.
    @Test func anErrorMiddlewareInsideTheAdapterRendersVaporsErrors() async throws {
        struct OwnErrors: AsyncMiddleware {
            func respond(to request: Vapor.Request, chainingTo next: any AsyncResponder) async throws -> Vapor.Response
            {
                do {
                    return try await next.respond(to: request)
                } catch let error as any AbortError {
                    return Vapor.Response(status: error.status, body: .init(string: "own: \(error.status.code)"))
                }
            }
        }
        try await withVaporApp({ app in
            app.middleware.use(
                StrataVaporMiddleware(try StrataCORS.CORSMiddleware<VaporContext>(configuration: corsConfiguration())))
            app.middleware.use(OwnErrors())
            app.get("here") { _ in "here" }
        }) { port in
            let missing = try await curl(["-H", "Origin: https://app.example"], port: port, path: "/nowhere")
            #expect(missing.head.hasPrefix("http/1.1 404"), "\(missing.head)")
            #expect(missing.body == "own: 404")
            #expect(missing.head.contains("access-control-allow-origin: https://app.example"), "\(missing.head)")
        }
    }

    static let vaporEchoScript = """
        import sys
        from websockets.sync.client import connect
        with connect(f"ws://127.0.0.1:{sys.argv[1]}/vapor-ws", open_timeout=10, close_timeout=10) as ws:
            ws.send("through the stack")
            print("text", ws.recv(timeout=10))
        """

    /// Vapor's own WebSocket route behind a Strata stack: the response with Vapor's upgrader
    /// goes back to Vapor as the same object, so the upgrade still happens.
    @Test func vaporsOwnWebSocketRoutesStillUpgradeBehindTheStack() async throws {
        try await withVaporApp({ app in
            app.middleware.use(
                StrataVaporMiddleware(try StrataCORS.CORSMiddleware<VaporContext>(configuration: corsConfiguration())))
            app.webSocket("vapor-ws") { _, ws in
                ws.onText { ws, text in ws.send("vapor: " + text) }
            }
        }) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.python(), ["-c", Self.vaporEchoScript, "\(port)"])
            #expect(output.stdout.contains("text vapor: through the stack"), "\(output.stdout) \(output.stderr)")
        }
    }

    static let echoScript = """
        import sys
        from websockets.sync.client import connect
        with connect(f"ws://127.0.0.1:{sys.argv[1]}/ws", compression="deflate", open_timeout=10, close_timeout=10) as ws:
            print("extensions", ws.response.headers.get("Sec-WebSocket-Extensions"))
            ws.send("hello κόσμε")
            print("text", ws.recv(timeout=10))
            payload = bytes(range(256)) * 4096
            ws.send(payload)
            print("binary", ws.recv(timeout=10) == payload)
            ws.close(code=4000, reason="done")
            print("closed", ws.close_code)
        """

    /// A Strata WebSocket route inside Vapor, through `Request.strataResponse` and Vapor's
    /// upgrader, driven by Python's `websockets`.
    @Test func aStrataWebSocketRouteRunsOnVapor() async throws {
        var configuration = WebSocketConfiguration()
        configuration.originPolicy = .dangerouslyAllowAnyOrigin
        configuration.compression = PerMessageDeflate()
        let endpoint = try WebSocketEndpoint(configuration: configuration)
        try await withVaporApp({ app in
            app.get("ws") { req in
                try await req.strataResponse { request, context in
                    endpoint.upgrade(request, context: context) { socket in
                        for try await message in socket.messages { try await socket.send(message) }
                    }
                }
            }
        }) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.python(), ["-c", Self.echoScript, "\(port)"])
            let lines = output.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("text hello κόσμε"), "\(output.stdout) \(output.stderr)")
            #expect(lines.first { $0.hasPrefix("extensions") }?.contains("permessage-deflate") == true)
            #expect(lines.contains("binary True"))
            #expect(lines.contains("closed 4000"), "\(output.stdout) \(output.stderr)")

            // Not a handshake: the endpoint's 426 comes back through Vapor.
            let plain = try await curl([], port: port, path: "/ws")
            #expect(plain.head.hasPrefix("http/1.1 426"), "\(plain.head)")
        }
    }
}
#endif
