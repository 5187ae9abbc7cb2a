import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import Synchronization

/// The routes the server tests exercise.
func makeTestRouter(events: ServerSideEvents = ServerSideEvents(), gate: Gate = Gate()) -> Router<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/") { _, _ in
        ServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: .init(string: "Hello, World!"))
    }
    router.post("/echo") { request, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody(contentLength: request.body.expectedLength) { writer in
                for try await chunk in request.body { try await writer.write(chunk) }
            }
        )
    }
    router.post("/collect") { request, _ in
        let body = try await request.body.collect(upTo: .max)
        return ServerResponse(status: .ok, body: .init(string: "\(body.readableBytes)"))
    }
    router.post("/ignore") { _, _ in ServerResponse(status: .ok, body: .init(string: "ignored")) }
    router.get("/stream") { _, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody { writer in
                for part in ["a", "b", "c"] { try await writer.write(ByteBuffer(string: part)) }
            })
    }
    router.get("/trailers") { _, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "data"))
                try await writer.finish(trailers: [HTTPField.Name("X-Checksum")!: "42"])
            })
    }
    router.get("/users/:id/files/**") { _, context in
        let parameters = context.values.routeParameters
        return ServerResponse(
            status: .ok, body: .init(string: "\(parameters["id"] ?? "-") \(parameters.catchAll ?? "-")"))
    }
    router.get("/users/:id") { _, context in
        ServerResponse(status: .ok, body: .init(string: "user \(context.values.routeParameters["id"] ?? "-")"))
    }
    router.get("/users/me") { _, _ in ServerResponse(status: .ok, body: .init(string: "me")) }
    router.get("/throw") { _, _ in
        struct DatabasePasswordError: Error { let detail = "password=hunter2" }
        throw DatabasePasswordError()
    }
    router.get("/forbidden") { _, _ in throw HTTPError(.forbidden, message: "not yours") }
    router.get("/throw-in-body") { _, _ in
        ServerResponse(status: .ok, body: ResponseBody { _ in throw HTTPError(.conflict, message: "late conflict") })
    }
    router.get("/wrong-length") { _, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody(contentLength: 10) { writer in
                try await writer.write(ByteBuffer(string: "12345"))
            })
    }
    router.get("/infinite") { _, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody { writer in
                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                do {
                    while true { try await writer.write(chunk) }
                } catch {
                    events.record("writer failed: \(type(of: error))")
                    throw error
                }
            })
    }
    router.get("/slow") { _, _ in
        events.record("slow started")
        await gate.wait()
        return ServerResponse(status: .ok, body: .init(string: "slow done"))
    }
    router.get("/gated-stream") { _, _ in
        ServerResponse(
            status: .ok,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "first;"))
                events.record("first written")
                await gate.wait()
                try await writer.write(ByteBuffer(string: "second;"))
                try await writer.write(ByteBuffer(string: "third"))
            })
    }
    router.get("/never") { _, _ in
        events.record("never started")
        try await Task.sleep(for: .seconds(3600))
        return ServerResponse(status: .ok)
    }
    router.get("/upgrade") { request, _ in
        if request.headerFields[HTTPField.Name("X-Refuse")!] != nil {
            return ServerResponse(status: .ok, body: .init(string: "refused"))
        }
        var response = ServerResponse(
            status: .switchingProtocols, headerFields: [.upgrade: "echo", .connection: "upgrade"])
        response.upgrade = ConnectionUpgrade { connection in
            for try await bytes in connection.inbound {
                try await connection.outbound.write(bytes)
            }
            connection.outbound.finish()
        }
        return response
    }
    router.get("/bad-upgrade") { _, _ in
        var response = ServerResponse(status: .switchingProtocols)
        response.upgrade = ConnectionUpgrade { _ in }
        return response
    }
    return router
}

/// A configuration with short timeouts for tests that wait for them.
func shortTimeouts(
    head: Duration = .seconds(10),
    body: Duration = .seconds(30),
    idle: Duration = .seconds(60),
    maxHead: Int = 32 * 1024,
    maxBody: Int = 8 * 1024 * 1024,
    shutdown: Duration = .seconds(10)
) throws -> HTTPServerConfiguration {
    try HTTPServerConfiguration(
        maxRequestHeadSize: maxHead,
        maxRequestBodySize: maxBody,
        requestHeadTimeout: head,
        requestBodyTimeout: body,
        idleTimeout: idle,
        shutdownTimeout: shutdown
    )
}
