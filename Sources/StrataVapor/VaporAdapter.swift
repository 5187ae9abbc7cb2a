#if Vapor
internal import HTTPTypes
public import Logging
public import NIOCore
internal import NIOHTTP1
internal import NIOHTTPTypesHTTP1
public import Strata
public import Vapor

/// A Vapor request seen as a Strata middleware context: the Vapor request itself (``request``),
/// plus the request-scoped ``values`` Strata middlewares share.
public struct VaporContext: MiddlewareContext {
    /// The Vapor request: its application, event loop, storage and logger.
    public let request: Vapor.Request
    /// Values shared by the Strata middlewares of this request.
    public let values: RequestValues

    /// Wraps `request` with fresh request values.
    public init(request: Vapor.Request) {
        self.request = request
        self.values = RequestValues()
    }

    /// The Vapor request's logger (setting it sets the request's).
    public var logger: Logger {
        get { self.request.logger }
        nonmutating set { self.request.logger = newValue }
    }

    /// The connection's peer address (not `X-Forwarded-For`: Strata's trusted-proxy handling
    /// decides about those).
    public var remoteAddress: SocketAddress? { self.request.remoteAddress }
}

/// What the Vapor adapter does where Vapor's API forces a choice.
public struct VaporAdapterConfiguration: Sendable {
    /// Vapor response bodies that Vapor streams (`Response.Body(stream:)`, `asyncStream`, file
    /// downloads) and that declare a length up to this are collected, so Strata middlewares can
    /// transform them (compress them). Longer streams and streams of unknown length cannot be
    /// read through Vapor's API: they pass through the stack untouched, as opaque bodies
    /// (``Strata/ResponseBody/isOpaque``). Default 1 MiB; 0 passes every stream through.
    public var responseCollectLimit: Int = 1 << 20

    /// A request body that a Strata middleware replaced (decompressed, for example) reaches
    /// Vapor collected, because a Vapor request cannot take a new stream. This bounds it: a
    /// larger one is answered with 413 and a log line. `nil` uses the application's
    /// `routes.defaultMaxBodySize`.
    public var requestCollectLimit: Int?

    /// Runs the stack's task on the request's event loop (a task executor preference) instead
    /// of Swift's global concurrent executor. Vapor answers on that loop, so this saves the
    /// thread hops there and back; the stack's code then shares the loop with its connections,
    /// as Vapor's own handlers do, so a middleware must not block. Default `true`.
    public var runsOnEventLoop: Bool = true

    /// The defaults.
    public init() {}
}

/// Any Strata middleware (or a composed `MiddlewareStack`) as one Vapor 4 `AsyncMiddleware`:
/// one task per request runs the whole stack.
///
/// ```swift
/// // StrataCORS's, not Vapor's own CORSMiddleware.
/// let cors = try StrataCORS.CORSMiddleware<VaporContext>(configuration: .init(allowedOrigins: ["https://app.example"]))
/// app.middleware.use(StrataVaporMiddleware(cors), at: .beginning)
/// ```
///
/// Bodies:
/// - The request body streams into the stack; when the stack leaves it alone, Vapor gets its own
///   request back, untouched.
/// - A response body Vapor holds in memory is a buffer to Strata; a Vapor stream of known length
///   up to ``VaporAdapterConfiguration/responseCollectLimit`` is collected; any other Vapor
///   stream passes through untouched (an opaque body, which transforming middlewares such as
///   compression leave alone with a debug log line).
/// - Strata upgrades (WebSocket) run on the Vapor connection through Vapor's
///   `Response.upgrader`.
public struct StrataVaporMiddleware<Middleware: HTTPMiddleware>: AsyncMiddleware
where Middleware.Context == VaporContext {
    /// The Strata middleware.
    public let middleware: Middleware
    /// How the adapter handles what Vapor's API does not expose.
    public let configuration: VaporAdapterConfiguration

    /// Adapts `middleware`.
    public init(_ middleware: Middleware, configuration: VaporAdapterConfiguration = .init()) {
        self.middleware = middleware
        self.configuration = configuration
    }

    /// Vapor's entry point: one task per request for the whole stack, on the request's event
    /// loop unless ``VaporAdapterConfiguration/runsOnEventLoop`` is off.
    public func respond(to request: Vapor.Request, chainingTo next: any Responder) -> EventLoopFuture<Vapor.Response> {
        let promise = request.eventLoop.makePromise(of: Vapor.Response.self)
        let responder = AsyncBasicResponder { request in try await next.respond(to: request).get() }
        if self.configuration.runsOnEventLoop {
            // On the loop Vapor answers on: no hop to the global executor and back. (Measured:
            // `Task.immediate` here, or completing already-finished futures without a
            // suspension, made it slower, not faster.)
            Task(executorPreference: EventLoopTaskExecutor(request.eventLoop)) {
                do {
                    promise.succeed(try await self.respond(to: request, chainingTo: responder))
                } catch {
                    promise.fail(error)
                }
            }
        } else {
            promise.completeWithTask { try await self.respond(to: request, chainingTo: responder) }
        }
        return promise.futureResult
    }

    /// Runs the stack for one request: Vapor's request in, Vapor's response out (the
    /// `AsyncMiddleware` requirement; Vapor itself calls the future-returning entry point).
    public func respond(to request: Vapor.Request, chainingTo next: any AsyncResponder) async throws -> Vapor.Response {
        let strataRequest: ServerRequest
        let source: VaporRequestBodySource?
        do {
            (strataRequest, source) = try VaporBridge.strataRequest(from: request)
        } catch {
            request.logger.notice("request head not representable for Strata: \(error); answering 400")
            return Vapor.Response(status: .badRequest)
        }
        let head = strataRequest.head
        // The application's response object, kept so the adapter can reuse it (the stack's
        // `next` is a non-escaping closure, so a local is enough).
        var innerResponse: Vapor.Response?
        let configuration = self.configuration

        let response: ServerResponse
        do {
            response = try await self.middleware.handle(strataRequest, context: VaporContext(request: request)) {
                strataRequest, context in
                let vaporRequest = try await VaporBridge.vaporRequest(
                    for: strataRequest, original: request, originalHead: head, source: source,
                    configuration: configuration)
                let answer: Vapor.Response
                do {
                    answer = try await next.respond(to: vaporRequest)
                } catch let error as any AbortError {
                    // Rendered here, by Vapor's default ErrorMiddleware, so the stack decorates
                    // it (CORS headers on a 404) as StrataServer's errors are.
                    answer = try await ErrorMiddleware.default(environment: vaporRequest.application.environment)
                        .respond(to: vaporRequest, chainingTo: FailingResponder(error: error)).get()
                }
                innerResponse = answer
                return try await VaporBridge.strataResponse(
                    from: answer, eventLoop: vaporRequest.eventLoop, configuration: configuration)
            }
        } catch let error as any Strata.HTTPResponseError {
            response = ServerResponse(error: error)
        }
        return VaporBridge.vaporResponse(from: response, reusing: innerResponse, logger: request.logger)
    }
}

/// The conversions between Vapor's types and Strata's, shared by the middleware and
/// ``Vapor/Request/strataResponse(configuration:_:)``.
enum VaporBridge {
    /// The Strata request for a Vapor request, and the class wrapping Vapor's streamed body.
    static func strataRequest(from request: Vapor.Request) throws -> (ServerRequest, VaporRequestBodySource?) {
        let requestHeaders = request.headers
        let head = try HTTPRequest(
            HTTPRequestHead(
                version: request.version, method: request.method, uri: request.url.string, headers: requestHeaders),
            secure: false, splitCookie: false)
        // Vapor's body as the Strata body, wrapped in a class so it can be recognised when it
        // comes back from the stack unchanged.
        if let collected = request.body.data {
            return (ServerRequest(head: head, body: Strata.RequestBody(buffer: collected)), nil)
        }
        if requestHeaders.contains(name: .transferEncoding)
            || (requestHeaders.first(name: .contentLength).map { $0 != "0" } ?? false)
        {
            let stream = VaporRequestBodySource(request.body)
            let body = Strata.RequestBody(
                stream: stream, expectedLength: requestHeaders.first(name: .contentLength).flatMap { Int($0) })
            return (ServerRequest(head: head, body: body), stream)
        }
        return (ServerRequest(head: head, body: .empty), nil)
    }

    /// The Vapor request the rest of the application sees: the original one when the stack left
    /// it alone, else the original with the stack's head, or (for a replaced body) a new request
    /// with the body collected.
    static func vaporRequest(
        for strataRequest: ServerRequest,
        original: Vapor.Request,
        originalHead: HTTPRequest,
        source: VaporRequestBodySource?,
        configuration: VaporAdapterConfiguration
    ) async throws -> Vapor.Request {
        let body = strataRequest.body
        let bodyUnchanged: Bool
        if let source {
            bodyUnchanged = (body.underlyingStream as AnyObject?) === source
        } else {
            // No body or Vapor's collected body: unchanged while it is still that buffer.
            bodyUnchanged = body.buffer == original.body.data ?? ByteBuffer()
        }
        if bodyUnchanged {
            if strataRequest.head != originalHead { Self.apply(strataRequest.head, to: original) }
            return original
        }
        // Vapor requests cannot take a new stream: collect the new body within a bound.
        let limit = configuration.requestCollectLimit ?? original.application.routes.defaultMaxBodySize.value
        let collected: ByteBuffer
        do {
            collected = try await body.collect(upTo: limit)
        } catch let error as RequestBodyTooLargeError {
            original.logger.notice(
                "a Strata middleware replaced the request body and the new one exceeds \(limit) bytes, the most the Vapor adapter collects; answering 413"
            )
            throw error
        }
        var headers = HTTPHeaders(strataRequest.head.headerFields)
        headers.remove(name: .transferEncoding)
        headers.replaceOrAdd(name: .contentLength, value: String(collected.readableBytes))
        let replacement = Vapor.Request(
            application: original.application,
            method: HTTPMethod(strataRequest.head.method),
            url: URI(string: strataRequest.head.path ?? "/"),
            version: original.version,
            headersNoUpdate: headers,
            collectedBody: collected,
            remoteAddress: original.remoteAddress,
            logger: original.logger,
            byteBufferAllocator: original.byteBufferAllocator,
            on: original.eventLoop
        )
        replacement.storage = original.storage
        return replacement
    }

    /// Writes a changed head onto the Vapor request.
    static func apply(_ head: HTTPRequest, to request: Vapor.Request) {
        let method = HTTPMethod(head.method)
        if method != request.method { request.method = method }
        if let path = head.path, path != request.url.string { request.url = URI(string: path) }
        request.headers = HTTPHeaders(head.headerFields)
    }

    /// A Vapor response as a Strata one.
    static func strataResponse(
        from response: Vapor.Response,
        eventLoop: any EventLoop,
        configuration: VaporAdapterConfiguration
    ) async throws -> ServerResponse {
        var fields = HTTPFields(response.headers, splitCookie: false)
        let vaporBody = response.body
        let count = vaporBody.count
        let body: Strata.ResponseBody
        if let buffer = vaporBody.buffer {
            body = Strata.ResponseBody(buffer: buffer)
        } else if count == 0 {
            body = Strata.ResponseBody()
        } else if count > 0, count <= configuration.responseCollectLimit {
            // A Vapor stream with a declared length within the bound: collected, so it can be
            // transformed.
            body = Strata.ResponseBody(buffer: try await vaporBody.collect(on: eventLoop).get() ?? ByteBuffer())
        } else {
            body = Strata.ResponseBody(opaque: vaporBody, contentLength: count >= 0 ? count : nil)
        }
        // Framing is the host's business; Strata middlewares read the body's length instead.
        fields[.transferEncoding] = nil
        var strata = ServerResponse(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headerFields: fields,
            body: body
        )
        if response.upgrader != nil {
            // A Vapor upgrade (Vapor's own WebSocket route): the response goes back to Vapor as it
            // was, its upgrader included.
            strata.status = .switchingProtocols
        }
        return strata
    }

    /// The Strata stack's response as the response Vapor sends: the application's own response
    /// object when there is one (so its upgrader and storage survive), updated.
    static func vaporResponse(
        from response: ServerResponse,
        reusing original: Vapor.Response?,
        logger: Logger
    ) -> Vapor.Response {
        var headers = HTTPHeaders(response.headerFields)
        let status = HTTPResponseStatus(
            statusCode: response.status.code, reasonPhrase: response.status.reasonPhrase)
        if let upgrade = response.upgrade {
            let answer = Vapor.Response(status: status, version: .http1_1, headersNoUpdate: headers, body: .empty)
            answer.upgrader = StrataUpgrader(upgrade: upgrade, headers: headers, logger: logger)
            return answer
        }
        let body: Vapor.Response.Body
        var length: Int?
        if let buffer = response.body.buffer {
            body = Vapor.Response.Body(buffer: buffer)
            length = buffer.readableBytes
        } else if let opaque = response.body.opaqueValue as? Vapor.Response.Body {
            body = opaque
            length = opaque.count >= 0 ? opaque.count : nil
        } else {
            let strataBody = response.body
            length = strataBody.contentLength
            body = Vapor.Response.Body(
                asyncStream: { writer in
                    var strataWriter: any Strata.ResponseBodyWriter = VaporWriterForStrata(base: writer)
                    do {
                        try await strataBody.write(to: &strataWriter)
                        try await strataWriter.finish(trailers: nil)
                    } catch {
                        logger.error("response body failed mid-stream, aborting the response: \(error)")
                        try await writer.write(.error(error))
                    }
                },
                count: length ?? -1)
        }
        // Framing from the body: Vapor sends what the head says.
        let code = response.status.code
        headers.remove(name: .transferEncoding)
        if (100..<200).contains(code) || code == 204 || code == 304 {
            // No body, and a 304 keeps whatever length the application stated.
        } else if let length {
            if response.headerFields[.contentLength] != String(length) {
                headers.replaceOrAdd(name: .contentLength, value: String(length))
            }
        } else {
            headers.remove(name: .contentLength)
            headers.add(name: .transferEncoding, value: "chunked")
        }
        if let original, original.upgrader == nil || response.status == .switchingProtocols {
            original.status = status
            original.headers = headers
            original.body = body
            return original
        }
        return Vapor.Response(status: status, version: .http1_1, headersNoUpdate: headers, body: body)
    }
}

/// An event loop as a task executor: jobs run on the loop's thread, so a task started from a
/// Vapor handler, and everything it awaits that completes on the loop, stays on that thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Vapor's request body, as a class so the adapter can recognise it by identity.
final class VaporRequestBodySource: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let body: Vapor.Request.Body

    init(_ body: Vapor.Request.Body) {
        self.body = body
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(base: self.body.makeAsyncIterator())
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: Vapor.Request.Body.AsyncIterator
        mutating func next() async throws -> ByteBuffer? { try await self.base.next() }
    }
}

/// A responder that fails with `error`, for rendering an error through `ErrorMiddleware`.
struct FailingResponder: Responder {
    let error: any Error
    func respond(to request: Vapor.Request) -> EventLoopFuture<Vapor.Response> {
        request.eventLoop.makeFailedFuture(self.error)
    }
}

/// Vapor's async body writer as the writer a Strata body writes to.
struct VaporWriterForStrata: Strata.ResponseBodyWriter {
    let base: any AsyncBodyStreamWriter
    var finished = false

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await self.base.write(.buffer(buffer))
    }

    mutating func finish(trailers: HTTPFields?) async throws {
        guard !self.finished else { return }
        self.finished = true
        // Vapor's response encoder sends no trailers.
        try await self.base.write(.end)
    }
}

extension Vapor.Request {
    /// Answers this request with a Strata handler: a Strata route, such as a WebSocket
    /// endpoint's upgrade, inside a Vapor app.
    ///
    /// ```swift
    /// let chat = try WebSocketEndpoint()
    /// app.get("chat") { req in
    ///     try await req.strataResponse { request, context in
    ///         chat.upgrade(request, context: context) { socket in
    ///             for try await message in socket.messages { try await socket.send(message) }
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// A `101` with a Strata upgrade runs on this Vapor connection once Vapor has written it.
    ///
    /// - Parameters:
    ///   - configuration: How bodies Vapor does not expose are handled.
    ///   - handler: The Strata handler.
    public func strataResponse(
        configuration: VaporAdapterConfiguration = .init(),
        _ handler: (ServerRequest, VaporContext) async throws -> ServerResponse
    ) async throws -> Vapor.Response {
        let request: ServerRequest
        do {
            (request, _) = try VaporBridge.strataRequest(from: self)
        } catch {
            self.logger.notice("request head not representable for Strata: \(error); answering 400")
            return Vapor.Response(status: .badRequest)
        }
        let response: ServerResponse
        do {
            response = try await handler(request, VaporContext(request: self))
        } catch let error as any Strata.HTTPResponseError {
            response = ServerResponse(error: error)
        }
        return VaporBridge.vaporResponse(from: response, reusing: nil, logger: self.logger)
    }
}
#endif
