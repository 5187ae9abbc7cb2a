public import Strata

/// Which pages may open a WebSocket: browsers send `Origin` on every WebSocket handshake, and a
/// server that ignores it lets any site act for its logged-in users (cross-site WebSocket
/// hijacking).
public struct WebSocketOriginPolicy: Sendable {
    enum Kind: Sendable {
        case sameOrigin
        case allowList(OriginMatcher)
        case any
    }

    let kind: Kind

    /// Only pages served from the host the handshake was sent to (its `Host`). The default.
    public static var sameOrigin: Self { Self(kind: .sameOrigin) }

    /// Pages whose origin matches one of `patterns` (StrataCORS's syntax: exact origins,
    /// `https://*.example.com`, `http://localhost:*`), as well as same-origin pages.
    ///
    /// - Throws: ``Strata/OriginPatternError`` for a pattern that does not parse.
    public static func allowing(_ patterns: [String]) throws(OriginPatternError) -> Self {
        var parsed: [OriginPattern] = []
        for pattern in patterns { parsed.append(try OriginPattern(pattern)) }
        return Self(kind: .allowList(OriginMatcher(parsed)))
    }

    /// Every origin, including other sites'. Only for endpoints that authenticate each
    /// connection themselves and never rely on cookies.
    public static var dangerouslyAllowAnyOrigin: Self { Self(kind: .any) }
}

/// How a ``WebSocketEndpoint`` accepts and runs connections. Every limit has a safe default.
public struct WebSocketConfiguration: Sendable {
    /// The largest frame accepted; a larger one closes the connection with 1009. Default 1 MiB.
    public var maxFrameSize: Int
    /// The largest message accepted, summed over its frames; more closes with 1009. Default 1 MiB.
    public var maxMessageSize: Int
    /// Outbound messages larger than this are sent as several frames. Default 64 KiB.
    public var outboundFrameSize: Int
    /// The bytes that may wait to be sent on one connection. Default 4 MiB.
    public var maxQueuedBytes: Int
    /// What happens when a send would exceed ``maxQueuedBytes`` (a consumer slower than its
    /// producers). Default ``SlowConsumerPolicy/close``.
    public var slowConsumerPolicy: SlowConsumerPolicy
    /// A ping is sent after this long without hearing from the client; `nil` turns pings off.
    /// Default 30 s.
    public var pingInterval: Duration?
    /// A client that answers nothing for this long after a ping is taken for dead and its
    /// connection dropped. Default 10 s.
    public var pongTimeout: Duration
    /// A connection without a data message either way for this long is closed with 1001;
    /// `nil` keeps idle connections. Default `nil`: pings keep dead ones out.
    public var idleTimeout: Duration?
    /// How long to wait for the client's close frame after sending ours. Default 5 s.
    public var closeTimeout: Duration
    /// Subprotocols the server speaks, most preferred first.
    public var subprotocols: [String]
    /// Which origins may connect. Default ``WebSocketOriginPolicy/sameOrigin``.
    public var originPolicy: WebSocketOriginPolicy
    /// permessage-deflate, agreed with clients that offer it; `nil` (the default) never
    /// compresses. The message limits apply to inflated bytes.
    public var compression: PerMessageDeflate?

    /// The defaults.
    public init() {
        self.maxFrameSize = 1 << 20
        self.maxMessageSize = 1 << 20
        self.outboundFrameSize = 64 << 10
        self.maxQueuedBytes = 4 << 20
        self.slowConsumerPolicy = .close
        self.pingInterval = .seconds(30)
        self.pongTimeout = .seconds(10)
        self.idleTimeout = nil
        self.closeTimeout = .seconds(5)
        self.subprotocols = []
        self.originPolicy = .sameOrigin
        self.compression = nil
    }

    /// What to do with a send that would queue more than ``maxQueuedBytes``.
    public enum SlowConsumerPolicy: Sendable, Hashable {
        /// Close the connection with 1013 (try again later); the send throws.
        case close
        /// Drop the message; the send returns ``SendResult/dropped``.
        case dropMessage
    }
}

/// A ``WebSocketConfiguration`` that was refused, with every problem and what to change.
public struct WebSocketConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found.
    public let problems: [String]
    public var description: String { "invalid WebSocket configuration: " + self.problems.joined(separator: "; ") }
}

extension WebSocketConfiguration {
    func validate() throws(WebSocketConfigurationError) {
        var problems: [String] = []
        if self.maxFrameSize < 125 { problems.append("maxFrameSize must be at least 125 (a control frame)") }
        if self.maxMessageSize < 1 { problems.append("maxMessageSize must be positive") }
        if self.maxFrameSize > Int(Int32.max) || self.maxMessageSize > Int(Int32.max) {
            problems.append("maxFrameSize and maxMessageSize must be bounded (at most 2 GiB)")
        }
        if self.outboundFrameSize < 1 { problems.append("outboundFrameSize must be positive") }
        if self.maxQueuedBytes < 1 { problems.append("maxQueuedBytes must be positive") }
        if let ping = self.pingInterval, ping <= .zero { problems.append("pingInterval must be positive, or nil") }
        if self.pongTimeout <= .zero { problems.append("pongTimeout must be positive") }
        if let idle = self.idleTimeout, idle <= .zero { problems.append("idleTimeout must be positive, or nil") }
        if self.closeTimeout <= .zero { problems.append("closeTimeout must be positive") }
        for name in self.subprotocols where name.isEmpty || !name.utf8.allSatisfy(\.isHTTPTokenByte) {
            problems.append("subprotocol \(name.debugDescription) must be an HTTP token")
        }
        problems += self.compression?.problems() ?? []
        if !problems.isEmpty { throw WebSocketConfigurationError(problems: problems) }
    }
}
