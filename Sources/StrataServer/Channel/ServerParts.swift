import HTTPTypes
import NIOCore
import NIOHTTP1

/// What the channel pipeline hands the connection task.
enum ServerInboundPart {
    /// A request head that passed validation.
    case head(RequestHeadInfo)
    /// A request head that failed validation: answer `status` and close.
    case invalid(HTTPResponse.Status, reason: String)
    case body(ByteBuffer)
    case end(HTTPFields?)
    /// Bytes on a connection after a protocol upgrade.
    case raw(ByteBuffer)
}

/// What the connection task writes to the channel pipeline.
enum ServerOutboundPart {
    case head(HTTPResponseHead)
    case body(ByteBuffer)
    case end(HTTPHeaders?)
    /// Bytes on a connection after a protocol upgrade.
    case raw(ByteBuffer)
}

/// A validated request head and what the server needs to know about its framing.
struct RequestHeadInfo {
    var request: HTTPRequest
    var isHTTP10: Bool
    /// Whether the client allows the connection to persist (version and `Connection` tokens).
    var keepAlive: Bool
    var expectsContinue: Bool
    /// The declared body length; `nil` when chunked or absent.
    var contentLength: Int?
    var hasBody: Bool
    /// Whether the HTTP parser stops after this request (it asked to upgrade, or is CONNECT):
    /// the connection must be handed over or closed after the response.
    var parserStops: Bool
    var asksToUpgrade: Bool
}

/// Events the codec sends back down the pipeline to ``ConnectionGuard``.
enum ConnectionEvent {
    case headReceived
    case bodyEnded
    case responseCompleted
    /// A request asks to upgrade: the bytes behind it may belong to another protocol.
    case upgradeRequested
    /// The answer to that request was not a 101.
    case upgradeRefused
    case upgraded
}
