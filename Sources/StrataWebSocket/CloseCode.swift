/// A close status code (RFC 6455 §7.4).
public struct WebSocketCloseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 1000: the purpose of the connection was fulfilled.
    public static let normalClosure = Self(rawValue: 1000)
    /// 1001: the server is going down, or the peer went away (also sent for idle connections).
    public static let goingAway = Self(rawValue: 1001)
    /// 1002: the peer broke the protocol.
    public static let protocolError = Self(rawValue: 1002)
    /// 1003: a message of a type the endpoint does not accept.
    public static let unsupportedData = Self(rawValue: 1003)
    /// 1005: reported, never sent: the client's close frame carried no code.
    public static let noStatusReceived = Self(rawValue: 1005)
    /// 1006: reported, never sent: the connection ended without a close frame (the client
    /// half-closed or vanished, or stopped answering).
    public static let abnormalClosure = Self(rawValue: 1006)
    /// 1007: a text message or close reason that is not UTF-8, or data that does not decode.
    public static let invalidPayload = Self(rawValue: 1007)
    /// 1008: a message that violates the endpoint's policy.
    public static let policyViolation = Self(rawValue: 1008)
    /// 1009: a frame or message over the size limit.
    public static let messageTooBig = Self(rawValue: 1009)
    /// 1010: the client needed an extension the server did not agree to.
    public static let mandatoryExtension = Self(rawValue: 1010)
    /// 1011: the server failed (a handler threw).
    public static let internalError = Self(rawValue: 1011)
    /// 1013: try again later (a consumer too slow for the outbound limit).
    public static let tryAgainLater = Self(rawValue: 1013)

    /// Whether a peer may send this code in a close frame: 1000–1003, 1007–1014 and
    /// 3000–4999. 1004–1006 and 1015 are reserved and never sent (RFC 6455 §7.4.1).
    public var isSendable: Bool {
        switch self.rawValue {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    public var description: String { String(self.rawValue) }
}

/// How a WebSocket connection ended.
public struct WebSocketCloseReason: Sendable, Hashable {
    /// The code from the close frame: ``WebSocketCloseCode/noStatusReceived`` (1005) for a
    /// close frame without one, ``WebSocketCloseCode/abnormalClosure`` (1006) when the
    /// connection ended without a close frame (RFC 6455 §7.1.5).
    public var code: WebSocketCloseCode
    /// The reason text from the close frame.
    public var reason: String
    /// Whether the server started the close.
    public var initiatedByServer: Bool
}
