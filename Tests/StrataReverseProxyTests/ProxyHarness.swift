import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataReverseProxy
import StrataServer
import StrataTestSupport
import StrataTesting
import Tracing

let quietLogger: Logger = {
    var logger = Logger(label: "strata.test.proxy")
    logger.logLevel = .critical
    return logger
}()

/// Runs a proxy in front of `upstreams` on a live server, for the duration of `body`.
func withProxy<Result: Sendable>(
    _ configuration: ReverseProxyConfiguration,
    rewrite: ReverseProxy<BasicContext>.Rewrite? = nil,
    modifyResponse: ReverseProxy<BasicContext>.ModifyResponse? = nil,
    errorHandler: ReverseProxy<BasicContext>.ErrorHandler? = nil,
    runService: Bool = false,
    logger: Logger = quietLogger,
    tracer: (any Tracer)? = nil,
    _ body: @Sendable (Int, ReverseProxy<BasicContext>) async throws -> Result
) async throws -> Result {
    let proxy = try ReverseProxy<BasicContext>(
        configuration: configuration, rewrite: rewrite, modifyResponse: modifyResponse, errorHandler: errorHandler,
        logger: logger, tracer: tracer)
    let service = runService ? Task { try await proxy.run() } : nil
    defer { service?.cancel() }
    let server = try HTTPServerConfiguration(maxRequestBodySize: 4 << 30, requestBodyTimeout: .seconds(120))
    return try await withLiveServer(responder: proxy, configuration: server, logger: logger) { port in
        try await body(port, proxy)
    }
}

/// A Strata server answering with `configure`'s routes.
func withUpstream<Result: Sendable>(
    _ configure: (Router<BasicContext>) -> Void,
    _ body: @Sendable (Int) async throws -> Result
) async throws -> Result {
    let router = Router<BasicContext>()
    configure(router)
    return try await withLiveServer(responder: router, logger: quietLogger, body)
}

/// An upstream that answers every request with its method, target, authority and fields, one
/// per line, so a test sees what the proxy sent.
func withEchoUpstream<Result: Sendable>(
    name: String = "echo",
    _ body: @Sendable (Int) async throws -> Result
) async throws -> Result {
    try await withUpstream(
        { router in
            let echo: Router<BasicContext>.Handler = { request, _ in
                var text =
                    "\(request.method.rawValue) \(request.head.path ?? "")\nupstream: \(name)\nhost: \(request.head.authority ?? "")\n"
                for field in request.headerFields { text += "\(field.name.canonicalName): \(field.value)\n" }
                let body = try await request.body.collect(upTo: 1 << 20)
                text += "body: \(String(buffer: body))\n"
                return ServerResponse(status: .ok, body: ResponseBody(string: text))
            }
            for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] {
                router.on("/**", method: method, handler: echo)
            }
        }, body)
}

/// Reads `field: value` lines of an echo answer.
func echoed(_ body: String) -> [String: [String]] {
    var fields: [String: [String]] = [:]
    for line in body.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].lowercased()
        fields[name, default: []].append(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    return fields
}

/// One request over a new raw connection; the parsed response.
func rawRequest(_ text: String, port: Int, timeout: Duration = .seconds(20)) async throws -> ParsedResponse? {
    let reply = try await RawHTTPClient.withConnection(port: port) { client in
        try await client.send(text)
        return try await client.read(until: { parseResponses($0).count >= 1 }, timeout: timeout)
    }
    return parseResponses(reply).first
}

func configuration(_ ports: Int...) throws -> ReverseProxyConfiguration {
    ReverseProxyConfiguration(upstreams: try ports.map { try Upstream("http://127.0.0.1:\($0)") })
}

/// An upstream nothing listens on, whatever other tests bind meanwhile: a Unix socket path
/// that does not exist, so every connect fails at once (a free TCP port could be taken).
func deadUpstream() throws -> Upstream {
    try Upstream("unix:/tmp/strata-test-nothing-\(UUID().uuidString).sock")
}
