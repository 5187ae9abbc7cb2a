#if Hummingbird
public import Hummingbird
public import HummingbirdCore
public import Logging
public import NIOCore
public import Strata

/// A Hummingbird request context seen as a Strata middleware context: the Hummingbird context is
/// carried as it is (``base``), with the request-scoped ``values`` Strata middlewares share.
public struct HummingbirdContext<Base: RequestContext>: MiddlewareContext {
    /// The Hummingbird context, handed back to Hummingbird's next handler.
    public var base: Base
    /// Values shared by the Strata middlewares of this request.
    public let values: RequestValues

    /// Wraps `base` with fresh request values.
    public init(base: Base) {
        self.base = base
        self.values = RequestValues()
    }

    public var logger: Logger {
        get { self.base.logger }
        set { self.base.logger = newValue }
    }

    /// The peer address, when the Hummingbird context knows it (`RemoteAddressRequestContext`).
    public var remoteAddress: SocketAddress? {
        (self.base as? any RemoteAddressRequestContext)?.remoteAddress
    }
}

/// Any Strata middleware (or a composed `MiddlewareStack`) as one Hummingbird 2 middleware.
///
/// ```swift
/// let router = Router()
/// router.add(middleware: StrataMiddleware(try CORSMiddleware<HummingbirdContext<BasicRequestContext>>(configuration: cors)))
/// ```
///
/// Bodies are bridged without collecting: the request body streams into the Strata stack, a
/// response Hummingbird produced streams through Strata's transforms (compression) chunk by
/// chunk. Strata upgrades (WebSocket) are not supported through Hummingbird: a 101 with an
/// upgrade becomes a 501 (see `Docs/Adapters.md`).
public struct StrataMiddleware<Context: RequestContext, Middleware: HTTPMiddleware>: RouterMiddleware
where Middleware.Context == HummingbirdContext<Context> {
    /// The Strata middleware.
    public let middleware: Middleware

    /// Adapts `middleware`.
    public init(_ middleware: Middleware) {
        self.middleware = middleware
    }

    public func handle(
        _ request: HummingbirdCore.Request,
        context: Context,
        next: (HummingbirdCore.Request, Context) async throws -> HummingbirdCore.Response
    ) async throws -> HummingbirdCore.Response {
        // A request without a body (no Content-Length, no Transfer-Encoding) stays without one:
        // nothing to bridge, and Hummingbird's own (empty) body goes on to `next`.
        let hasBody = request.headers[.transferEncoding] != nil || (request.headers[.contentLength] ?? "0") != "0"
        let strataRequest = ServerRequest(
            head: request.head,
            body: hasBody
                ? Strata.RequestBody(
                    stream: request.body, expectedLength: request.headers[.contentLength].flatMap { Int($0) })
                : .empty
        )
        let response: ServerResponse
        do {
            response = try await self.middleware.handle(strataRequest, context: HummingbirdContext(base: context)) {
                strataRequest, context in
                let unchangedBody = !hasBody && strataRequest.body.expectedLength == 0
                let inner: HummingbirdCore.Request
                if unchangedBody && strataRequest.head == request.head {
                    inner = request  // untouched by the stack: no new request, no URI parse
                } else {
                    inner = HummingbirdCore.Request(
                        head: strataRequest.head,
                        body: unchangedBody
                            ? request.body : HummingbirdCore.RequestBody(asyncSequence: strataRequest.body)
                    )
                }
                let answer: HummingbirdCore.Response
                do {
                    answer = try await next(inner, context.base)
                } catch let error as any Hummingbird.HTTPResponseError {
                    // Hummingbird's errors (404 and friends) become responses here, so Strata
                    // middlewares see and decorate them, as they do on StrataServer.
                    answer = try error.response(from: inner, context: context.base)
                }
                return ServerResponse(
                    status: answer.status, headerFields: answer.headers, body: try await Self.bridge(answer.body))
            }
        } catch let error as any Strata.HTTPResponseError {
            response = ServerResponse(error: error)
        }
        if response.upgrade != nil || response.status == .switchingProtocols {
            context.logger.error("a Strata upgrade cannot run inside Hummingbird; answering 501")
            return HummingbirdCore.Response(status: .notImplemented)
        }
        let body = response.body
        if let buffer = body.buffer {
            // In memory: Hummingbird's own buffer body, its fastest path.
            return HummingbirdCore.Response(
                status: response.status, headers: response.headerFields, body: .init(byteBuffer: buffer))
        }
        return HummingbirdCore.Response(
            status: response.status,
            headers: response.headerFields,
            body: HummingbirdCore.ResponseBody(contentLength: body.contentLength) { writer in
                var strataWriter: any Strata.ResponseBodyWriter = HummingbirdWriterForStrata(writer)
                try await body.write(to: &strataWriter)
                try await strataWriter.finish(trailers: nil)
            }
        )
    }

    /// Bodies of a known length up to this are taken into memory when they come back from
    /// Hummingbird, so Strata middlewares see a buffer (compressed in one call, exact length).
    static var smallBodyLimit: Int { 16 << 10 }

    /// A Hummingbird response body as a Strata one: small known-length bodies as a buffer (a
    /// Hummingbird buffer body hands over its buffer, uncopied), the rest streamed as written.
    static func bridge(_ body: HummingbirdCore.ResponseBody) async throws -> Strata.ResponseBody {
        if let length = body.contentLength, length <= Self.smallBodyLimit {
            let collector = BodyCollector()
            try await body.write(collector)
            if collector.state.trailers == nil { return Strata.ResponseBody(buffer: collector.state.buffer) }
            let (buffer, trailers) = (collector.state.buffer, collector.state.trailers)
            return Strata.ResponseBody(contentLength: buffer.readableBytes) { writer in
                try await writer.write(buffer)
                try await writer.finish(trailers: trailers)
            }
        }
        return Strata.ResponseBody(contentLength: body.contentLength) { writer in
            try await body.write(StrataWriterForHummingbird(writer))
        }
    }
}

/// Takes a small Hummingbird body into memory.
final class BodyCollector: HummingbirdCore.ResponseBodyWriter {
    struct State {
        var buffer = ByteBuffer()
        var trailers: HTTPFields?
    }
    var state = State()

    func write(_ buffer: ByteBuffer) async throws {
        if self.state.buffer.readableBytes == 0 {
            self.state.buffer = buffer
        } else {
            var buffer = buffer
            self.state.buffer.writeBuffer(&buffer)
        }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {
        self.state.trailers = trailingHeaders
    }
}

/// Hummingbird's body writer as the writer a Strata body writes to.
struct HummingbirdWriterForStrata: Strata.ResponseBodyWriter {
    var base: any HummingbirdCore.ResponseBodyWriter
    var finished = false

    init(_ base: any HummingbirdCore.ResponseBodyWriter) {
        self.base = base
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await self.base.write(buffer)
    }

    mutating func finish(trailers: HTTPFields?) async throws {
        guard !self.finished else { return }
        self.finished = true
        try await self.base.finish(trailers)
    }
}

/// A Strata body writer as the writer a Hummingbird body writes to.
struct StrataWriterForHummingbird: HummingbirdCore.ResponseBodyWriter {
    var base: any Strata.ResponseBodyWriter

    init(_ base: any Strata.ResponseBodyWriter) {
        self.base = base
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await self.base.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await self.base.finish(trailers: trailingHeaders)
    }
}
#endif
