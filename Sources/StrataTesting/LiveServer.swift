public import Logging
import NIOCore
import ServiceLifecycle
public import Strata
public import StrataServer
import Synchronization

/// Starts a real ``HTTPServer`` on an ephemeral loopback port for the duration of `body`.
///
/// The server is shut down gracefully when `body` returns or throws.
///
/// ```swift
/// try await withLiveServer(responder: router) { port in
///     let response = try await RawHTTPClient.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n", port: port)
/// }
/// ```
///
/// - Parameters:
///   - responder: What answers requests.
///   - configuration: Limits and timeouts; host and port are replaced by `127.0.0.1:0`.
///   - logger: The server's logger.
///   - body: The test, given the bound port.
public func withLiveServer<Responder: HTTPResponder, Result: Sendable>(
    responder: Responder,
    configuration: HTTPServerConfiguration? = nil,
    logger: Logger = Logger(label: "strata.test.server"),
    _ body: @Sendable (Int) async throws -> Result
) async throws -> Result where Responder.Context: ServerContext {
    var configuration = try configuration ?? HTTPServerConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let server = HTTPServer(
        responder: responder,
        configuration: configuration,
        logger: logger,
        onServerRunning: { address in
            continuation.yield(address.port ?? 0)
            continuation.finish()
        }
    )
    let group = ServiceGroup(
        configuration: .init(services: [.init(service: server)], logger: logger)
    )
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            throw LiveServerError()
        }
        do {
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// The live server did not start.
public struct LiveServerError: Error, CustomStringConvertible {
    public var description: String { "the live test server did not start" }
}
