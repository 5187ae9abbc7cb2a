/// Two middlewares run one after the other, as one middleware.
///
/// You rarely name this type: ``MiddlewareStackBuilder`` nests it so that a whole stack is one
/// concrete generic value, with no existential dispatch between layers.
public struct MiddlewarePair<First: HTTPMiddleware, Second: HTTPMiddleware>: HTTPMiddleware
where First.Context == Second.Context {
    public typealias Context = First.Context

    @usableFromInline
    let first: First
    @usableFromInline
    let second: Second

    /// Runs `first`, and `second` inside it.
    @inlinable
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    @inlinable
    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await self.first.handle(request, context: context) { request, context in
            try await self.second.handle(request, context: context, next: next)
        }
    }
}

/// A middleware that does nothing: the empty stack, and the missing branch of an `if`.
public struct PassthroughMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// Creates the no-op middleware.
    @inlinable
    public init() {}

    @inlinable
    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await next(request, context)
    }
}

/// One of two middlewares, chosen when the stack is built.
public enum EitherMiddleware<First: HTTPMiddleware, Second: HTTPMiddleware>: HTTPMiddleware
where First.Context == Second.Context {
    public typealias Context = First.Context

    /// The `if` branch.
    case first(First)
    /// The `else` branch.
    case second(Second)

    @inlinable
    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        switch self {
        case .first(let middleware): try await middleware.handle(request, context: context, next: next)
        case .second(let middleware): try await middleware.handle(request, context: context, next: next)
        }
    }
}

/// Composes middlewares, outermost first, into one generic value.
///
/// ```swift
/// let stack = MiddlewareStack<BasicContext> {
///     LogRequestsMiddleware()
///     if compress { CompressionMiddleware() }
///     CORSMiddleware(configuration: cors)
/// }
/// let responder = stack.wrapping(router)
/// ```
///
/// The first middleware listed sees the request first and the response last.
@resultBuilder
public enum MiddlewareStackBuilder<Context: MiddlewareContext> {
    public static func buildExpression<M: HTTPMiddleware>(_ middleware: M) -> M where M.Context == Context {
        middleware
    }

    public static func buildPartialBlock<M: HTTPMiddleware>(first: M) -> M where M.Context == Context {
        first
    }

    public static func buildPartialBlock<M0: HTTPMiddleware, M1: HTTPMiddleware>(
        accumulated: M0,
        next: M1
    ) -> MiddlewarePair<M0, M1> where M0.Context == Context, M1.Context == Context {
        MiddlewarePair(accumulated, next)
    }

    public static func buildBlock() -> PassthroughMiddleware<Context> {
        PassthroughMiddleware()
    }

    public static func buildOptional<M: HTTPMiddleware>(
        _ middleware: M?
    ) -> EitherMiddleware<M, PassthroughMiddleware<Context>> where M.Context == Context {
        middleware.map { .first($0) } ?? .second(PassthroughMiddleware())
    }

    public static func buildEither<M0: HTTPMiddleware, M1: HTTPMiddleware>(
        first: M0
    ) -> EitherMiddleware<M0, M1> where M0.Context == Context, M1.Context == Context {
        .first(first)
    }

    public static func buildEither<M0: HTTPMiddleware, M1: HTTPMiddleware>(
        second: M1
    ) -> EitherMiddleware<M0, M1> where M0.Context == Context, M1.Context == Context {
        .second(second)
    }
}

/// A composed middleware stack: one middleware value built from many.
///
/// Adapters wrap a stack as one framework middleware, so a stack of ten costs one framework
/// hop, not ten.
public struct MiddlewareStack<Middleware: HTTPMiddleware>: HTTPMiddleware {
    public typealias Context = Middleware.Context

    /// The composed middleware.
    public let middleware: Middleware

    /// Builds a stack from the middlewares listed in `build`, outermost first. The list may
    /// `try` (middlewares validate their configuration at init); the error is rethrown.
    @inlinable
    public init<Context>(
        _ context: Context.Type = Context.self,
        @MiddlewareStackBuilder<Context> _ build: () throws -> Middleware
    ) rethrows where Middleware.Context == Context {
        self.middleware = try build()
    }

    @inlinable
    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await self.middleware.handle(request, context: context, next: next)
    }
}
