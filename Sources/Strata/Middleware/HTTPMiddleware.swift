/// A unit of request processing that can inspect or change a request on its way in and the
/// response on its way out.
///
/// The shape is the same as Hummingbird 2's middleware, so a middleware written for Strata runs in
/// the default server, in Hummingbird and in Vapor through the adapters.
///
/// ```swift
/// struct ServerHeaderMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
///     func handle(
///         _ request: ServerRequest,
///         context: Context,
///         next: (ServerRequest, Context) async throws -> ServerResponse
///     ) async throws -> ServerResponse {
///         var response = try await next(request, context)
///         response.head.headerFields[.server] = "strata"
///         return response
///     }
/// }
/// ```
public protocol HTTPMiddleware<Context>: Sendable {
    /// The request context this middleware runs with.
    associatedtype Context: MiddlewareContext

    /// Processes one request.
    ///
    /// - Parameters:
    ///   - request: The request as the previous middleware passed it on.
    ///   - context: The request's context.
    ///   - next: The rest of the stack; call it at most once to get the inner response.
    /// - Returns: The response to send.
    func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse
}

/// Something that turns a request into a response: a router, a single handler, or a middleware
/// stack already wrapped around one.
public protocol HTTPResponder<Context>: Sendable {
    /// The request context this responder runs with.
    associatedtype Context: MiddlewareContext

    /// Produces the response to `request`.
    func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse
}

/// A responder made from a closure.
///
/// ```swift
/// let hello = ClosureResponder<BasicContext> { _, _ in ServerResponse(status: .ok, body: .init(string: "hi")) }
/// ```
public struct ClosureResponder<Context: MiddlewareContext>: HTTPResponder {
    @usableFromInline
    let closure: @Sendable (ServerRequest, Context) async throws -> ServerResponse

    /// Creates a responder that calls `closure` for every request.
    public init(_ closure: @escaping @Sendable (ServerRequest, Context) async throws -> ServerResponse) {
        self.closure = closure
    }

    @inlinable
    public func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse {
        try await self.closure(request, context)
    }
}

/// A responder that runs a middleware in front of another responder.
public struct MiddlewareResponder<Middleware: HTTPMiddleware, Next: HTTPResponder>: HTTPResponder
where Middleware.Context == Next.Context {
    public typealias Context = Next.Context

    @usableFromInline
    let middleware: Middleware
    @usableFromInline
    let next: Next

    /// Wraps `next` in `middleware`.
    @inlinable
    public init(middleware: Middleware, next: Next) {
        self.middleware = middleware
        self.next = next
    }

    @inlinable
    public func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse {
        try await self.middleware.handle(request, context: context) { request, context in
            try await self.next.respond(to: request, context: context)
        }
    }
}

extension HTTPMiddleware {
    /// Returns a responder that runs this middleware in front of `responder`.
    @inlinable
    public func wrapping<Next: HTTPResponder>(_ responder: Next) -> MiddlewareResponder<Self, Next>
    where Next.Context == Context {
        MiddlewareResponder(middleware: self, next: responder)
    }
}
