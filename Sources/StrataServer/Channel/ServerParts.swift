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

/// What the connection task writes to the channel pipeline; ``ServerCodec`` encodes it.
enum ServerOutboundPart {
    /// A response head, final or informational.
    case head(ResponseHead)
    /// Body bytes, framed as a chunk when the head said chunked.
    case body(ByteBuffer)
    /// The end of the response, with trailers when it is chunked.
    case end(HTTPFields?)
    /// A whole response with a body known in advance (or none): head, body and end in one write.
    case whole(ResponseHead, ByteBuffer?)
    /// Bytes on a connection after a protocol upgrade.
    case raw(ByteBuffer)
}

/// A response head and the framing the connection chose for it, encoded straight from the
/// handler's `HTTPFields` by ``ServerCodec`` (no intermediate header list, no field rewritten
/// in place): the handler's `Transfer-Encoding` is never sent, its `Content-Length` only when
/// ``keepsContentLengthField`` says so, and the fields below are added after the handler's.
struct ResponseHead {
    var status: HTTPResponse.Status
    var fields: HTTPFields
    /// The `Content-Length` the server sends; `nil` for none of its own.
    var contentLength: Int? = nil
    /// Whether the handler's own `Content-Length` lines go out (a `HEAD` answered without a body
    /// length, a `304`).
    var keepsContentLengthField = false
    /// Whether the body is sent in chunks (`Transfer-Encoding: chunked`).
    var chunked = false
    /// Whether a `Date` is added when the handler set none.
    var addsDate = false
    /// A `Server` added when the handler set none.
    var server: String? = nil
    /// A `Connection` token added after the handler's own `Connection` lines.
    var connection: ConnectionToken? = nil
    /// Whether the handler's `Connection` lines are dropped, so that ``connection`` replaces them.
    var replacesConnectionField = false

    enum ConnectionToken {
        case close
        case keepAlive
    }

    init(status: HTTPResponse.Status, fields: HTTPFields = HTTPFields()) {
        self.status = status
        self.fields = fields
    }

    /// A 1xx: the handler's fields, without framing fields, nothing added.
    static func informational(_ response: HTTPResponse) -> ResponseHead {
        ResponseHead(status: response.status, fields: response.headerFields)
    }
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
