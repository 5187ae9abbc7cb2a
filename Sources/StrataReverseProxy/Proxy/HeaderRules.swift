import HTTPTypes
import NIOCore
import Strata

/// The hop-by-hop and forwarding rules, in one place for both directions.
enum HeaderRules {
    static let keepAlive = HTTPField.Name("Keep-Alive")!
    static let host = HTTPField.Name("Host")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let forwarded = HTTPField.Name("Forwarded")!
    static let via = HTTPField.Name("Via")!
    static let secWebSocketKey = HTTPField.Name("Sec-WebSocket-Key")!
    static let secWebSocketAccept = HTTPField.Name("Sec-WebSocket-Accept")!

    /// Whether `name` is hop-by-hop by definition (RFC 9110 §7.6.1), `Proxy-*` included.
    static func isHopByHop(_ name: HTTPField.Name) -> Bool {
        // Dispatch on the first byte and the length first: most fields are none of these.
        let canonical = name.canonicalName
        let bytes = canonical.utf8
        switch bytes.first {
        case UInt8(ascii: "c"): return bytes.count == 10 && canonical == "connection"
        case UInt8(ascii: "k"): return bytes.count == 10 && canonical == "keep-alive"
        case UInt8(ascii: "t"):
            switch bytes.count {
            case 2: return canonical == "te"
            case 7: return canonical == "trailer"
            case 17: return canonical == "transfer-encoding"
            default: return false
            }
        case UInt8(ascii: "u"): return bytes.count == 7 && canonical == "upgrade"
        case UInt8(ascii: "p"): return canonical.hasPrefix("proxy-")
        default: return false
        }
    }

    /// Removes the hop-by-hop fields and every field `Connection` names.
    ///
    /// - Returns: whether the message carried `TE: trailers`.
    @discardableResult
    static func removeHopByHop(_ fields: inout HTTPFields, alsoRemove extra: [HTTPField.Name] = []) -> Bool {
        var named: [String] = []
        var teTrailers = false
        var found = false
        for field in fields {
            if field.name == .connection {
                for token in Self.listTokens(field.value) where !Self.isDefaultConnectionToken(token) {
                    named.append(token.lowercased())
                }
            } else if field.name == .te {
                teTrailers =
                    teTrailers || Self.listTokens(field.value).contains { $0.equalsIgnoringASCIICase("trailers") }
            }
            if !found && (self.isHopByHop(field.name) || extra.contains(field.name)) { found = true }
        }
        guard found || !named.isEmpty else { return teTrailers }
        fields.removeAll { field in
            self.isHopByHop(field.name) || extra.contains(field.name) || named.contains(field.name.canonicalName)
        }
        return teTrailers
    }

    /// The elements of a comma-separated field value, OWS trimmed, empty ones skipped. Splits on
    /// bytes: `String.split` walks grapheme clusters, which perf showed as most of the head work.
    static func listTokens(_ value: String) -> [Substring] {
        var tokens: [Substring] = []
        for piece in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            let token = Substring(piece).trimmingOWS()
            if !token.isEmpty { tokens.append(token) }
        }
        return tokens
    }

    /// `keep-alive`, `close` and `upgrade` name no field to remove (the hop-by-hop ones go anyway);
    /// skipping them saves a lowercased copy each.
    private static func isDefaultConnectionToken(_ token: Substring) -> Bool {
        token.equalsIgnoringASCIICase("keep-alive") || token.equalsIgnoringASCIICase("close")
            || token.equalsIgnoringASCIICase("upgrade")
    }

    /// Sets the forwarding fields: kept and extended when the peer is trusted, replaced
    /// otherwise. Runs after ``removeHopByHop(_:alsoRemove:)``, so a client cannot name them in
    /// `Connection` to strip what the proxy adds.
    static func setForwarding(
        _ fields: inout HTTPFields,
        peer: IPAddress?,
        peerTrusted: Bool,
        host: String?,
        proto: String,
        kinds: ForwardingHeaders,
        via: String?
    ) {
        let peerText = peer?.description ?? "unknown"
        if !peerTrusted {
            // One pass, and appends after it: no name lookups on the fields.
            if fields.contains(where: { self.isForwardingField($0.name) }) {
                fields.removeAll { self.isForwardingField($0.name) }
            }
            if kinds.contains(.xForwarded) {
                fields.append(HTTPField(name: self.xForwardedFor, value: peerText))
                if let host { fields.append(HTTPField(name: self.xForwardedHost, value: host)) }
                fields.append(HTTPField(name: self.xForwardedProto, value: proto))
            }
        } else if kinds.contains(.xForwarded) {
            let existing = fields[self.xForwardedFor]
            fields[self.xForwardedFor] = existing.map { "\($0), \(peerText)" } ?? peerText
            if fields[self.xForwardedHost] == nil, let host { fields[self.xForwardedHost] = host }
            if fields[self.xForwardedProto] == nil { fields[self.xForwardedProto] = proto }
        }
        if kinds.contains(.forwarded) {
            var element = "for=" + self.forwardedNode(peer)
            if let host { element += ";host=" + self.quotedIfNeeded(host) }
            element += ";proto=" + proto
            self.append(element, to: self.forwarded, in: &fields)
        }
        if let via { self.append("1.1 \(via)", to: self.via, in: &fields) }
    }

    /// Appends a list element to the last `name` field, keeping every earlier element (unlike
    /// `appendListElement`, which merges equal names: each hop is its own element here).
    static func append(_ element: String, to name: HTTPField.Name, in fields: inout HTTPFields) {
        guard let index = fields.lastIndex(where: { $0.name == name }) else {
            fields.append(HTTPField(name: name, value: element))
            return
        }
        var field = fields[index]
        field.value = field.value.isEmpty ? element : field.value + ", " + element
        fields[index] = field
    }

    private static func isForwardingField(_ name: HTTPField.Name) -> Bool {
        name == self.xForwardedFor || name == self.xForwardedHost || name == self.xForwardedProto
            || name == self.forwarded
    }

    /// A `Forwarded` node: IPv6 is bracketed and quoted (RFC 7239 §6).
    static func forwardedNode(_ address: IPAddress?) -> String {
        guard let address else { return "unknown" }
        return address.isIPv4 ? address.description : "\"[\(address.description)]\""
    }

    static func quotedIfNeeded(_ value: String) -> String {
        let isToken = value.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
                UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "^"),
                UInt8(ascii: "`"), UInt8(ascii: "|"):
                return true
            default:
                return false
            }
        }
        if isToken { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }

    /// Whether a request target can go on the wire as is: visible ASCII, origin or asterisk form.
    static func isSafeTarget(_ target: String) -> Bool {
        guard target == "*" || target.hasPrefix("/") else { return false }
        return target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// The request head in HTTP/1.1 wire form, framing written fresh.
    static func encodeHead(
        method: HTTPRequest.Method,
        target: String,
        authority: String,
        fields: HTTPFields,
        contentLength: Int?,
        chunked: Bool,
        upgrade: String?,
        into buffer: inout ByteBuffer
    ) {
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(target)
        buffer.writeStaticString(" HTTP/1.1\r\nHost: ")
        buffer.writeString(authority)
        buffer.writeStaticString("\r\n")
        for field in fields {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        if let upgrade {
            buffer.writeStaticString("Connection: Upgrade\r\nUpgrade: ")
            buffer.writeString(upgrade)
            buffer.writeStaticString("\r\n")
        }
        if chunked {
            buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
        } else if let contentLength, contentLength > 0 || method == .post || method == .put || method == .patch {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(contentLength))
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// One chunk of a chunked body.
    static func encodeChunk(_ chunk: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString(String(chunk.readableBytes, radix: 16))
        buffer.writeStaticString("\r\n")
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        buffer.writeStaticString("\r\n")
    }

    /// The last chunk and the trailer fields.
    static func encodeLastChunk(trailers: HTTPFields?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n")
        for field in trailers ?? [:] where !self.isHopByHop(field.name) && field.name != .contentLength {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
