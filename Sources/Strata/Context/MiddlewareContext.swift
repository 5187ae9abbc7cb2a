public import Logging
public import NIOCore

/// What every middleware may rely on, whatever server or framework runs it.
///
/// The default server uses ``BasicContext``; the Hummingbird and Vapor adapters provide their own
/// conforming types. A middleware that only needs these members is generic over its context:
///
/// ```swift
/// struct TimingMiddleware<Context: MiddlewareContext>: HTTPMiddleware { ... }
/// ```
public protocol MiddlewareContext: Sendable {
    /// The logger for this request.
    var logger: Logger { get set }
    /// The address of the peer that opened the connection, when the transport has one.
    ///
    /// Behind a proxy this is the proxy: use ``TrustedProxies`` to find the client.
    var remoteAddress: SocketAddress? { get }
    /// Values that middlewares attach to this request for later middlewares and the handler.
    ///
    /// Reference semantics: a copy of the context shares the values.
    var values: RequestValues { get }
    /// Where 1xx informational responses go ahead of the final one (`103 Early Hints`), when
    /// the host can send them; `nil` by default.
    var informationalResponses: (any InformationalResponseSender)? { get }
}

/// What a server knows about a request before any middleware runs, used to create a context.
public struct ContextSource: Sendable {
    /// The server's logger.
    public var logger: Logger
    /// The peer address of the connection.
    public var remoteAddress: SocketAddress?
    /// The local address the connection was accepted on.
    public var localAddress: SocketAddress?
    /// Where the connection sends 1xx informational responses, when it can.
    public var informationalResponses: (any InformationalResponseSender)?

    /// Creates a source.
    public init(
        logger: Logger,
        remoteAddress: SocketAddress? = nil,
        localAddress: SocketAddress? = nil,
        informationalResponses: (any InformationalResponseSender)? = nil
    ) {
        self.logger = logger
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.informationalResponses = informationalResponses
    }
}

/// A context that a server can create for each request.
///
/// Conform your own context type to this to run it on `StrataServer` or in `StrataTesting`.
public protocol ServerContext: MiddlewareContext {
    /// Creates the context for a new request.
    init(source: ContextSource)
}

/// The default request context: a logger, the peer address and the request's values.
public struct BasicContext: ServerContext {
    /// The request's logger, the server's to begin with.
    public var logger: Logger
    /// The peer address of the connection.
    public let remoteAddress: SocketAddress?
    /// This request's values, new for each request.
    public let values: RequestValues
    /// Where 1xx informational responses go, when the server can send them.
    public let informationalResponses: (any InformationalResponseSender)?

    /// Creates a context from what the server knows.
    @inlinable
    public init(source: ContextSource) {
        self.logger = source.logger
        self.remoteAddress = source.remoteAddress
        self.values = RequestValues()
        self.informationalResponses = source.informationalResponses
    }
}
