public import Strata

/// An ``HTTPCache`` as a middleware: put it in a stack in front of the handlers (and outside
/// compression and sessions, see `Docs/Cache.md`).
///
/// ```swift
/// let cache = try HTTPCache()
/// let app = MiddlewareStack<BasicContext> {
///     cache.middleware()
///     ResponseCompressionMiddleware()
/// }.wrapping(router)
/// ```
///
/// The middleware reaches the origin only through each request's own `next`, so a response
/// within `stale-while-revalidate` is revalidated before it is answered; ``HTTPCacheResponder``
/// revalidates in the background instead.
public struct HTTPCacheMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// The cache.
    public let cache: HTTPCache

    /// Creates the middleware of `cache`.
    public init(cache: HTTPCache) {
        self.cache = cache
    }

    // `next` is `@concurrent`: the type `HTTPMiddleware` declares, spelled out in a module
    // whose async function types are nonisolated(nonsending) by default.
    public func handle(
        _ request: ServerRequest, context: Context,
        next: @concurrent (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        try await self.cache.respond(to: request, context: context, next: next, background: nil)
    }
}

/// An ``HTTPCache`` in front of an origin responder (the app's router, or a reverse proxy),
/// which it can call after answering: `stale-while-revalidate` responses are served at once and
/// revalidated in the background, once per stored response.
///
/// ```swift
/// let proxy = try ReverseProxy<BasicContext>(upstreams: [...])
/// let server = StrataServer(responder: try HTTPCache().responder(origin: proxy))
/// ```
public struct HTTPCacheResponder<Origin: HTTPResponder>: HTTPResponder {
    public typealias Context = Origin.Context

    /// The cache.
    public let cache: HTTPCache
    /// What the cache forwards to.
    public let origin: Origin
    /// The origin as the background revalidation calls it, made once rather than per request.
    private let background: @Sendable (ServerRequest, Context) async throws -> ServerResponse

    /// Puts `cache` in front of `origin`.
    public init(cache: HTTPCache, origin: Origin) {
        self.cache = cache
        self.origin = origin
        self.background = { request, context in try await origin.respond(to: request, context: context) }
    }

    public func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse {
        try await self.cache.respond(
            to: request, context: context,
            next: { request, context in try await self.origin.respond(to: request, context: context) },
            background: self.background)
    }
}
