import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Strata

/// Turns NIO's HTTP/1 parts into validated ``ServerInboundPart``s and writes the connection
/// task's parts back out.
///
/// NIO's parser (llhttp) already rejects broken framing: both `Content-Length` and
/// `Transfer-Encoding`, duplicate `Content-Length`, a `Transfer-Encoding` whose last coding is not
/// chunked, bad chunk syntax. What it lets through and RFC 9112 forbids is checked here: the
/// `Host` rules, request-target forms, the HTTP version, unknown expectations. A bad head is
/// passed on as `.invalid` so the answer goes out in order behind earlier pipelined responses.
final class ServerCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ServerInboundPart
    typealias OutboundIn = ServerOutboundPart
    typealias OutboundOut = ByteBuffer

    /// Set after an `.invalid` head: the connection is closing and its body parts are dropped.
    private var discarding = false
    /// A request that asks to upgrade is waiting for its answer.
    private var upgradePending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            context.triggerUserOutboundEvent(ConnectionEvent.headReceived, promise: nil)
            switch Self.validate(head) {
            case .success(let info):
                if info.asksToUpgrade {
                    self.upgradePending = true
                    context.triggerUserOutboundEvent(ConnectionEvent.upgradeRequested, promise: nil)
                }
                context.fireChannelRead(self.wrapInboundOut(.head(info)))
            case .failure(let failure):
                self.discarding = true
                context.fireChannelRead(self.wrapInboundOut(.invalid(failure.status, reason: failure.reason)))
            }
        case .body(let buffer):
            if !self.discarding { context.fireChannelRead(self.wrapInboundOut(.body(buffer))) }
        case .end(let trailers):
            context.triggerUserOutboundEvent(ConnectionEvent.bodyEnded, promise: nil)
            if !self.discarding {
                context.fireChannelRead(self.wrapInboundOut(.end(trailers.map { HTTPFields($0, splitCookie: false) })))
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let head):
            self.headWillGo(head, context: context)
            var buffer = context.channel.allocator.buffer(capacity: 256)
            buffer.writeResponseHead(head)
            context.write(self.wrapOutboundOut(buffer), promise: promise)
        case .body(let chunk):
            guard self.chunked, chunk.readableBytes > 0 else {
                context.write(self.wrapOutboundOut(chunk), promise: promise)
                return
            }
            if chunk.readableBytes <= Self.copiedChunkSize {
                var buffer = context.channel.allocator.buffer(capacity: chunk.readableBytes + 16)
                buffer.writeChunk(chunk)
                context.write(self.wrapOutboundOut(buffer), promise: promise)
            } else {
                // A large chunk is not copied: its size line, itself, then the CRLF after it.
                var line = context.channel.allocator.buffer(capacity: 16)
                line.writeChunkSizeLine(chunk.readableBytes)
                context.write(self.wrapOutboundOut(line), promise: nil)
                context.write(self.wrapOutboundOut(chunk), promise: nil)
                context.write(self.wrapOutboundOut(Self.crlf), promise: promise)
            }
        case .end(let trailers):
            if self.chunked {
                var buffer = context.channel.allocator.buffer(capacity: trailers == nil ? 5 : 256)
                buffer.writeLastChunk(trailers: trailers)
                context.write(self.wrapOutboundOut(buffer), promise: promise)
            } else if let promise {
                // Nothing to send, but the promise completes in order behind the writes before it.
                context.write(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            }
            self.chunked = false
            context.triggerUserOutboundEvent(ConnectionEvent.responseCompleted, promise: nil)
        case .whole(let head, let body):
            self.headWillGo(head, context: context)
            let bodyBytes = body?.readableBytes ?? 0
            let copiesBody = bodyBytes <= Self.copiedBodySize
            var buffer = context.channel.allocator.buffer(capacity: 256 + (copiesBody ? bodyBytes : 0))
            buffer.writeResponseHead(head)
            if let body, bodyBytes > 0 {
                if head.chunked {
                    // Not what the connection sends (a known body has a length), but kept well framed.
                    buffer.writeChunk(body)
                } else if copiesBody {
                    buffer.writeImmutableBuffer(body)
                } else {
                    context.write(self.wrapOutboundOut(buffer), promise: nil)
                    buffer = body
                }
            }
            if head.chunked { buffer.writeLastChunk(trailers: nil) }
            context.write(self.wrapOutboundOut(buffer), promise: promise)
            self.chunked = false
            context.triggerUserOutboundEvent(ConnectionEvent.responseCompleted, promise: nil)
        case .raw:
            // The codec leaves the pipeline before any raw bytes are written.
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    /// Whether the response being written is chunked (set by its final head).
    private var chunked = false
    /// Bodies and chunks up to this size are copied behind their head or size line, so a small
    /// response is one buffer; larger ones are written as they are.
    private static let copiedBodySize = 4096
    private static let copiedChunkSize = 1024
    private static let crlf = ByteBuffer(string: "\r\n")

    private func headWillGo(_ head: ResponseHead, context: ChannelHandlerContext) {
        // An interim 1xx (103 Early Hints) answers nothing yet; only a final status refuses.
        guard head.status.code >= 200 else { return }
        self.chunked = head.chunked
        if self.upgradePending {
            // The upgrade was refused: the connection goes on (or closes) as HTTP.
            self.upgradePending = false
            context.triggerUserOutboundEvent(ConnectionEvent.upgradeRefused, promise: nil)
        }
    }

    struct Rejection: Error {
        var status: HTTPResponse.Status
        var reason: String
    }

    /// `HTTPTypes` keeps Host as the `authority` pseudo-field and has no name for it.
    private static let hostField = HTTPField.Name("Host")!

    static func validate(_ head: HTTPRequestHead) -> Result<RequestHeadInfo, Rejection> {
        guard head.version.major == 1 else {
            return .failure(
                Rejection(status: .init(code: 505), reason: "HTTP version \(head.version) is not supported"))
        }
        let isHTTP10 = head.version.minor == 0
        let method: HTTPRequest.Method
        do {
            method = try HTTPRequest.Method(head.method)
        } catch {
            return .failure(Rejection(status: .badRequest, reason: "invalid method"))
        }

        var host: String?
        var hostCount = 0
        var contentLength: Int?
        var chunked = false
        var expectation: String?
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var hasUpgradeField = false
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            guard let fieldName = HTTPField.Name(name) else {
                return .failure(Rejection(status: .badRequest, reason: "invalid header field name"))
            }
            switch fieldName {
            case Self.hostField:
                hostCount += 1
                host = value
                continue
            case .contentLength:
                guard let length = Int(value), length >= 0, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    return .failure(Rejection(status: .badRequest, reason: "invalid Content-Length"))
                }
                if let contentLength, contentLength != length {
                    return .failure(Rejection(status: .badRequest, reason: "conflicting Content-Length"))
                }
                contentLength = length
            case .transferEncoding:
                // Only `chunked`, once: anything else cannot be framed (RFC 9112 §6.1), and a
                // coding list like `chunked, identity` or `xchunked` is how requests get smuggled
                // past a proxy that reads it differently.
                guard !chunked, value[...].trimmingOWS().equalsIgnoringASCIICase("chunked") else {
                    // Chunked last after other codings: understood framing, codings we do not
                    // implement (501). Chunked not last, or twice: no reliable length (400).
                    let codings = value.split(separator: ",").map { $0.trimmingOWS() }
                    let chunkedLastOnly =
                        !chunked && codings.last?.equalsIgnoringASCIICase("chunked") == true
                        && codings.dropLast().allSatisfy { !$0.equalsIgnoringASCIICase("chunked") }
                    return .failure(
                        Rejection(
                            status: chunkedLastOnly ? .notImplemented : .badRequest,
                            reason: "unsupported Transfer-Encoding"))
                }
                chunked = true
            case .expect:
                expectation = value
            case .connection:
                for token in value.split(separator: ",") {
                    let token = token.trimmingOWS()
                    if token.equalsIgnoringASCIICase("close") { connectionClose = true }
                    if token.equalsIgnoringASCIICase("keep-alive") { connectionKeepAlive = true }
                    if token.equalsIgnoringASCIICase("upgrade") { connectionUpgrade = true }
                }
            case .upgrade:
                hasUpgradeField = true
            default:
                break
            }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        if chunked && contentLength != nil {
            return .failure(Rejection(status: .badRequest, reason: "both Content-Length and Transfer-Encoding"))
        }
        if hostCount > 1 {
            return .failure(Rejection(status: .badRequest, reason: "more than one Host field"))
        }
        if hostCount == 0 && !isHTTP10 {
            return .failure(Rejection(status: .badRequest, reason: "missing Host field"))
        }
        if let host, !Self.isValidHost(host) {
            return .failure(Rejection(status: .badRequest, reason: "invalid Host field"))
        }

        // Request-target forms (RFC 9112 §3.2).
        let uri = head.uri
        var path: String
        var authority = host
        var scheme: String? = "http"
        if uri.hasPrefix("/") {
            path = uri
        } else if uri == "*" {
            guard method == .options else {
                return .failure(Rejection(status: .badRequest, reason: "asterisk-form is only for OPTIONS"))
            }
            path = "*"
        } else if method == .connect {
            path = ""
            authority = uri
            scheme = nil
        } else if let absolute = Self.splitAbsoluteForm(uri) {
            // The target's authority wins over Host (RFC 9112 §3.2.2).
            scheme = absolute.scheme
            authority = absolute.authority
            path = absolute.path
        } else {
            return .failure(Rejection(status: .badRequest, reason: "invalid request target"))
        }
        if method == .connect {
            path = ""
        }

        var expectsContinue = false
        if let expectation, !isHTTP10 {
            guard expectation.equalsIgnoringASCIICase("100-continue") else {
                return .failure(Rejection(status: .expectationFailed, reason: "unsupported expectation"))
            }
            expectsContinue = true
        }

        let keepAlive = isHTTP10 ? (connectionKeepAlive && !connectionClose) : !connectionClose
        let asksToUpgrade = hasUpgradeField && connectionUpgrade
        var request = HTTPRequest(
            method: method,
            scheme: method == .connect ? nil : scheme,
            authority: authority,
            path: method == .connect ? nil : path
        )
        request.headerFields = fields
        let hasBody = chunked || (contentLength ?? 0) > 0
        return .success(
            RequestHeadInfo(
                request: request,
                isHTTP10: isHTTP10,
                keepAlive: keepAlive,
                expectsContinue: expectsContinue && hasBody,
                contentLength: chunked ? nil : contentLength,
                hasBody: hasBody,
                parserStops: asksToUpgrade || method == .connect,
                asksToUpgrade: asksToUpgrade
            )
        )
    }

    /// `Host = uri-host [ ":" port ]`: a reg-name, IPv4 or bracketed IPv6, with a numeric port.
    static func isValidHost(_ host: String) -> Bool {
        var bytes = host.utf8[...]
        if bytes.isEmpty { return true }
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !inside.isEmpty,
                inside.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            bytes = bytes[bytes.index(after: close)...]
            if bytes.isEmpty { return true }
            guard bytes.first == UInt8(ascii: ":") else { return false }
            return bytes.dropFirst().allSatisfy { $0 >= 48 && $0 <= 57 }
        }
        var sawColon = false
        for byte in bytes {
            if sawColon {
                guard byte >= 48 && byte <= 57 else { return false }
            } else if byte == UInt8(ascii: ":") {
                sawColon = true
            } else if !isRegNameByte(byte) {
                return false
            }
        }
        return true
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...70).contains(byte) || (97...102).contains(byte)
    }

    /// unreserved / pct-encoded / sub-delims
    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
            UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// Splits `http://host:port/path?query` into its parts; `nil` when it is not that form.
    static func splitAbsoluteForm(_ uri: String) -> (scheme: String, authority: String, path: String)? {
        let lowered = uri.lowercased()
        let scheme: String
        if lowered.hasPrefix("http://") {
            scheme = "http"
        } else if lowered.hasPrefix("https://") {
            scheme = "https"
        } else {
            return nil
        }
        let rest = uri.dropFirst(scheme.count + 3)
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<pathStart])
        guard !authority.isEmpty, !authority.contains("@"), isValidHost(authority) else { return nil }
        var path = String(rest[pathStart...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        return (scheme, authority, path)
    }
}
