public import HTTPTypes
public import Strata

/// What went wrong with an upstream.
public enum ProxyErrorKind: String, Sendable {
    /// The upstream could not be reached.
    case connect
    /// Connecting took longer than the connect timeout.
    case connectTimeout = "connect_timeout"
    /// No response head within the response-head timeout.
    case responseHeadTimeout = "response_head_timeout"
    /// No body bytes within the idle timeout.
    case idleTimeout = "idle_timeout"
    /// The exchange took longer than the total timeout.
    case totalTimeout = "total_timeout"
    /// The upstream sent something that is not valid HTTP/1.1, or ambiguous framing.
    case protocolError = "protocol"
    /// The upstream closed the connection before answering in full.
    case closed
    /// Every connection to the upstream stayed busy.
    case poolExhausted = "pool_exhausted"
    /// No upstream was available (all unhealthy, ejected or open-circuited).
    case noUpstream = "no_upstream"

    /// The status the default error handler answers: 504 for timeouts, 503 when no upstream
    /// is available, 502 otherwise.
    public var status: HTTPResponse.Status {
        switch self {
        case .connectTimeout, .responseHeadTimeout, .idleTimeout, .totalTimeout: .gatewayTimeout
        case .noUpstream, .poolExhausted: .serviceUnavailable
        case .connect, .protocolError, .closed: .badGateway
        }
    }
}

/// A failed proxy attempt, as the error handler sees it. Its ``detail`` is for logs, never
/// for the client: as an `HTTPResponseError` it becomes the status and a short body only.
public struct ProxyError: Error, Sendable, CustomStringConvertible, HTTPResponseError {
    /// What went wrong.
    public let kind: ProxyErrorKind
    /// The upstream that failed, when one was picked.
    public let upstream: Upstream?
    /// The underlying cause, for logs.
    public let detail: String

    /// The status the default error handler answers.
    public var status: HTTPResponse.Status { self.kind.status }
    /// `no-store`: an error answer must not be cached in front of the proxy.
    public var headerFields: HTTPFields { [.cacheControl: "no-store"] }
    /// The status and its reason, nothing of the cause.
    public var publicMessage: String? { "\(self.status.code) \(self.status.reasonPhrase)\n" }

    public var description: String {
        "proxy \(self.kind.rawValue)\(self.upstream.map { " at \($0)" } ?? ""): \(self.detail)"
    }

    init(kind: ProxyErrorKind, upstream: Upstream?, detail: String) {
        self.kind = kind
        self.upstream = upstream
        self.detail = detail
    }

    init(_ error: any Error, upstream: Upstream?) {
        self.upstream = upstream
        self.detail = "\(error)"
        switch error {
        case let timeout as UpstreamTimeoutError:
            switch timeout.kind {
            case .connect: self.kind = .connectTimeout
            case .responseHead: self.kind = .responseHeadTimeout
            case .idle: self.kind = .idleTimeout
            case .total: self.kind = .totalTimeout
            }
        case is UpstreamConnectError: self.kind = .connect
        case is UpstreamProtocolError: self.kind = .protocolError
        case is UpstreamPoolExhaustedError: self.kind = .poolExhausted
        default: self.kind = .closed
        }
    }
}
