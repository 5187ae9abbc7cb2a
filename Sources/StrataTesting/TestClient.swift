public import HTTPTypes
public import Logging
public import NIOCore
public import Strata

/// A response collected by ``TestClient``.
public struct TestResponse: Sendable {
    /// Status and header fields.
    public var head: HTTPResponse
    /// The whole body.
    public var body: ByteBuffer
    /// Trailer fields, if the body sent any.
    public var trailers: HTTPFields?
    /// The body's declared length.
    public var contentLength: Int?
    /// The connection upgrade the response asked for, if any.
    public var upgrade: ConnectionUpgrade?

    /// The response status.
    public var status: HTTPResponse.Status { self.head.status }
    /// The response's header fields.
    public var headerFields: HTTPFields { self.head.headerFields }
    /// The body as UTF-8 text.
    public var bodyString: String { String(buffer: self.body) }
}

/// Runs a responder in process, without sockets: fast tests of middlewares and handlers.
///
/// Errors thrown by the responder become responses the way the server makes them, so a test sees
/// what a client would.
///
/// ```swift
/// let client = TestClient(responder: stack.wrapping(router))
/// let response = try await client.execute(.get, "/hello")
/// #expect(response.status == .ok)
/// ```
public struct TestClient<Responder: HTTPResponder>: Sendable where Responder.Context: ServerContext {
    /// The responder under test.
    public let responder: Responder
    /// The logger given to every context.
    public var logger: Logger
    /// The peer address every request appears to come from.
    public var remoteAddress: SocketAddress?

    /// Creates a client for `responder`.
    public init(responder: Responder, logger: Logger = Logger(label: "strata.test")) {
        self.responder = responder
        self.logger = logger
        self.remoteAddress = try? SocketAddress(ipAddress: "127.0.0.1", port: 54321)
    }

    /// Sends a request and collects the whole response.
    ///
    /// - Parameters:
    ///   - method: The request method.
    ///   - path: The request target, with any query.
    ///   - headerFields: The request's header fields.
    ///   - body: The request body.
    public func execute(
        _ method: HTTPRequest.Method,
        _ path: String,
        headerFields: HTTPFields = [:],
        body: RequestBody = .empty
    ) async throws -> TestResponse {
        let head = HTTPRequest(
            method: method, scheme: "http", authority: "localhost", path: path, headerFields: headerFields)
        return try await self.execute(ServerRequest(head: head, body: body))
    }

    /// Sends `request` and collects the whole response.
    public func execute(_ request: ServerRequest) async throws -> TestResponse {
        let context = Responder.Context(source: ContextSource(logger: self.logger, remoteAddress: self.remoteAddress))
        let response: ServerResponse
        do {
            response = try await self.responder.respond(to: request, context: context)
        } catch {
            response = ServerResponse(error: error)
        }
        let collector = CollectedBody(head: response.head)
        var writer: any ResponseBodyWriter = CollectingWriter(target: collector)
        try await response.body.write(to: &writer)
        try await writer.finish(trailers: nil)
        return TestResponse(
            head: collector.head,
            body: collector.buffer,
            trailers: collector.trailers,
            contentLength: response.body.contentLength,
            upgrade: response.upgrade
        )
    }
}

/// Where a ``CollectingWriter`` puts the body; a class so every copy of the writer shares it.
final class CollectedBody {
    var head: HTTPResponse
    var buffer = ByteBuffer()
    var trailers: HTTPFields?
    var finished = false
    /// Whether a body byte was written, after which the head counts as sent.
    var started = false

    init(head: HTTPResponse) {
        self.head = head
    }
}

struct CollectingWriter: ResponseBodyWriter {
    let target: CollectedBody

    func write(_ buffer: ByteBuffer) async throws {
        precondition(!self.target.finished, "a response body was written after it finished")
        var buffer = buffer
        if buffer.readableBytes > 0 { self.target.started = true }
        self.target.buffer.writeBuffer(&buffer)
    }

    func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        guard !self.target.started, !self.target.finished else { return false }
        var fields = self.target.head.headerFields
        update(&fields)
        for name in [HTTPField.Name.contentLength, .transferEncoding, .connection] {
            fields[values: name] = self.target.head.headerFields[values: name]
        }
        self.target.head.headerFields = fields
        return true
    }

    func finish(trailers: HTTPFields?) async throws {
        guard !self.target.finished else { return }
        self.target.finished = true
        self.target.trailers = trailers
    }
}
