import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataServer
import UnixSignals

/// The Hello example: `GET /` answers `Hello, World!`, `POST /echo` streams the body back.
@main
struct HelloExample {
    static func main() async throws {
        let port = Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080"
        let host = Self.option("--host") ?? "127.0.0.1"
        guard let portNumber = Int(port) else {
            print("invalid port \(port)")
            exit(2)
        }
        var logger = Logger(label: "hello")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let server = HTTPServer(
            responder: buildResponder(),
            configuration: try HTTPServerConfiguration(host: host, port: portNumber, maxRequestBodySize: .max),
            logger: logger
        )
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func option(_ name: String) -> String? {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
}

/// The example's routes behind its one middleware; tests reuse it.
func buildResponder() -> some HTTPResponder<BasicContext> {
    let router = Router<BasicContext>()
    let hello = ByteBuffer(string: "Hello, World!")
    router.get("/") { _, _ in
        ServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: ResponseBody(buffer: hello))
    }
    router.post("/echo") { request, _ in
        var fields = HTTPFields()
        fields[.contentType] = request.headerFields[.contentType] ?? "application/octet-stream"
        return ServerResponse(
            status: .ok,
            headerFields: fields,
            body: ResponseBody(contentLength: request.body.expectedLength) { writer in
                for try await chunk in request.body {
                    try await writer.write(chunk)
                }
            }
        )
    }
    let stack = MiddlewareStack(BasicContext.self) {
        RequestIDMiddleware<BasicContext>()
    }
    return stack.wrapping(router)
}
