public import HTTPTypes
import Strata

/// How a request is found in the cache: the primary key (method and normalised URL) and, for
/// responses that carry `Vary`, the secondary key made of the request's normalised values of the
/// fields `Vary` names (RFC 9111 §4.1).
public enum CacheKey {
    /// The primary key of `request`: `GET` (a `HEAD` is answered from the `GET` entry), the
    /// scheme, the host in lower case without its default port, and the path and query with
    /// percent-encodings normalised (RFC 3986 §6.2.2): hex digits upper-cased, unreserved
    /// characters decoded. The query's order is kept: `?a=1&b=2` and `?b=2&a=1` may differ.
    public static func primary(for request: HTTPRequest) -> String {
        let scheme = request.scheme ?? "http"
        let authority = request.authority ?? ""
        let target = Self.normalisedTarget(request.path ?? "/")
        // Written byte by byte into the key's own storage: one allocation, and the scheme and
        // host lower-cased on the way. A non-ASCII scheme or host (no valid request has one)
        // takes the general path below.
        var ascii = true
        let capacity = 7 + scheme.utf8.count + authority.utf8.count + target.utf8.count
        let key = String(unsafeUninitializedCapacity: capacity) { bytes in
            // Plain loops over one index: nested functions here made the compiler box their
            // captures (one more allocation per key).
            var count = 0
            for byte in "GET ".utf8 {
                bytes[count] = byte
                count += 1
            }
            let schemeStart = count
            for byte in scheme.utf8 {
                if byte >= 0x80 { ascii = false }
                bytes[count] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                count += 1
            }
            let lowerScheme = UnsafeBufferPointer(rebasing: bytes[schemeStart..<count])
            let defaultPort =
                lowerScheme.elementsEqual("http".utf8) ? ":80" : lowerScheme.elementsEqual("https".utf8) ? ":443" : ""
            for byte in "://".utf8 {
                bytes[count] = byte
                count += 1
            }
            var hostBytes = authority.utf8.count
            if !defaultPort.isEmpty, authority.utf8.suffix(defaultPort.utf8.count).elementsEqual(defaultPort.utf8) {
                hostBytes -= defaultPort.utf8.count
            }
            for byte in authority.utf8.prefix(hostBytes) {
                if byte >= 0x80 { ascii = false }
                bytes[count] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                count += 1
            }
            for byte in target.utf8 {
                bytes[count] = byte
                count += 1
            }
            return count
        }
        return ascii ? key : Self.primaryWithUnicodeCase(scheme: scheme, authority: request.authority, target: target)
    }

    /// The primary key when the scheme or host has non-ASCII bytes: lower-cased by Unicode's
    /// rules, as `String.lowercased()` does.
    private static func primaryWithUnicodeCase(scheme: String, authority: String?, target: String) -> String {
        let scheme = Self.lowercased(scheme)
        var authority = authority.map(Self.lowercased)
        if scheme == "http", authority?.hasSuffix(":80") == true { authority?.removeLast(3) }
        if scheme == "https", authority?.hasSuffix(":443") == true { authority?.removeLast(4) }
        var key = "GET "
        key.append(scheme)
        key.append("://")
        if let authority { key.append(authority) }
        key.append(target)
        return key
    }

    /// `text` in lower case, itself when it has no upper-case ASCII letter (the usual host and
    /// scheme): no new string.
    private static func lowercased(_ text: String) -> String {
        text.utf8.allSatisfy { $0 < 0x41 || ($0 > 0x5A && $0 < 0x80) } ? text : text.lowercased()
    }

    /// The secondary key of a request for a response that varies on `varyNames` (lower case, in
    /// the response's order): each name and the request's normalised value, or a marker for an
    /// absent field. `nil` for `Vary: *`, which no request matches.
    static func secondary(varyNames: [String], request: HTTPFields) -> String? {
        if varyNames.isEmpty { return "" }
        var key = ""
        for name in varyNames {
            if name == "*" { return nil }
            key += name
            key += ":"
            if let fieldName = HTTPField.Name(name), request.has(fieldName) {
                key += Self.normalisedValue(request, name: fieldName, lowercase: Self.caseInsensitive.contains(name))
            } else {
                key += "\u{0}"
            }
            key += "\n"
        }
        return key
    }

    /// The `Vary` names of a response, lower-cased, duplicates removed, in order.
    static func varyNames(_ fields: HTTPFields) -> [String] {
        var names: [String] = []
        for element in fields.listElements(.vary) {
            let name = element.lowercased()
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// Fields whose values compare ignoring case (their tokens are case-insensitive).
    static let caseInsensitive: Set<String> = ["accept-encoding", "accept-charset", "accept-language", "accept"]

    /// A field's lines joined as one list, each element trimmed, with `", "` between them.
    static func normalisedValue(_ fields: HTTPFields, name: HTTPField.Name, lowercase: Bool) -> String {
        var value = ""
        for element in fields.listElements(name) {
            if !value.isEmpty { value += ", " }
            value += Self.collapsingWhitespace(element)
        }
        return lowercase ? value.lowercased() : value
    }

    private static func collapsingWhitespace(_ element: Substring) -> String {
        guard element.utf8.contains(where: { $0 == 0x20 || $0 == 0x09 }) else { return String(element) }
        var text = ""
        var inQuotes = false
        var pendingSpace = false
        for character in element {
            if character == "\"" { inQuotes.toggle() }
            if !inQuotes, character == " " || character == "\t" {
                pendingSpace = true
                continue
            }
            // Whitespace around `;` and `=` carries no meaning in parameters.
            if pendingSpace, character != ";", character != "=", text.last != ";", text.last != "=" { text += " " }
            pendingSpace = false
            text.append(character)
        }
        return text
    }

    /// The request target with percent-encodings normalised.
    static func normalisedTarget(_ target: String) -> String {
        guard target.utf8.contains(UInt8(ascii: "%")) else { return target }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(target.utf8.count)
        let utf8 = Array(target.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), index + 2 < utf8.count, let high = Self.hexValue(utf8[index + 1]),
                let low = Self.hexValue(utf8[index + 2])
            {
                let decoded = high << 4 | low
                if Self.isUnreserved(decoded) {
                    bytes.append(decoded)
                } else {
                    bytes.append(byte)
                    bytes.append(Self.upperHex(utf8[index + 1]))
                    bytes.append(Self.upperHex(utf8[index + 2]))
                }
                index += 3
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    private static func upperHex(_ byte: UInt8) -> UInt8 {
        (0x61...0x66).contains(byte) ? byte - 0x20 : byte
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "~")
    }
}

/// How the cache rewrites a request's `Accept-Encoding` before looking it up and forwarding it,
/// so that the responses a compressing origin varies on `Accept-Encoding` make few variants.
public struct AcceptEncodingNormalization: Sendable, Hashable {
    enum Mode: Hashable {
        case unchanged
        case accepted
        case preferred
    }

    let mode: Mode
    /// The codings considered, in the server's order of preference, lower case.
    public let codings: [String]

    /// Leaves `Accept-Encoding` as the client sent it: every spelling is its own variant.
    public static let unchanged = AcceptEncodingNormalization(mode: .unchanged, codings: [])

    /// Keeps the codings of `codings` that the client accepts (`q` above 0, directly or through
    /// `*`), without weights, in the order of `codings`: `gzip, deflate, br` and
    /// `br;q=0.9, GZIP, deflate` both become `gzip, deflate, br`. The origin still chooses among
    /// them. The default order is the one browsers send, so their field is left as it is.
    public static func accepted(among codings: [String] = ["gzip", "deflate", "br", "zstd"]) -> Self {
        AcceptEncodingNormalization(mode: .accepted, codings: codings.map { $0.lowercased() })
    }

    /// Keeps only the first coding of `codings` the client accepts (or none): the fewest
    /// variants, for origins that support every coding listed.
    public static func preferred(among codings: [String]) -> Self {
        AcceptEncodingNormalization(mode: .preferred, codings: codings.map { $0.lowercased() })
    }

    /// Which of ``codings`` `fields` accepts, as bits (coding `i` is bit `i`).
    private func acceptedCodings(_ fields: HTTPFields) -> UInt64 {
        var explicit: UInt64 = 0
        var refused: UInt64 = 0
        var wildcard: Int?
        QualityList.forEachElement(in: fields, name: .acceptEncoding) { value, quality in
            if value == "*" {
                wildcard = quality
                return
            }
            for (index, coding) in self.codings.prefix(64).enumerated() where value.equalsIgnoringASCIICase(coding) {
                if quality > 0 { explicit |= 1 << index } else { refused |= 1 << index }
            }
        }
        var accepted = explicit
        if let wildcard, wildcard > 0 {
            let all: UInt64 = self.codings.count >= 64 ? .max : (1 << self.codings.count) - 1
            accepted |= all & ~refused
        }
        if self.mode == .preferred, accepted != 0 { accepted &= accepted & (~accepted &+ 1) }
        return accepted
    }

    /// Whether `value` is already the codings of `accepted` in order, joined by `", "`.
    private func matches(_ value: String, _ accepted: UInt64) -> Bool {
        var rest = value.utf8[...]
        var first = true
        for (index, coding) in self.codings.prefix(64).enumerated() where accepted & (1 << index) != 0 {
            if !first {
                guard rest.starts(with: ", ".utf8) else { return false }
                rest = rest.dropFirst(2)
            }
            guard rest.starts(with: coding.utf8) else { return false }
            rest = rest.dropFirst(coding.utf8.count)
            first = false
        }
        return rest.isEmpty
    }

    /// Rewrites `fields`'s `Accept-Encoding`; a field already in normal form is left untouched
    /// (no allocation).
    public func apply(to fields: inout HTTPFields) {
        guard self.mode != .unchanged else { return }
        var lines = 0
        var current: String?
        for field in fields where field.name.isSame(as: .acceptEncoding) {
            lines += 1
            current = field.value
        }
        guard let current else { return }
        let accepted = self.acceptedCodings(fields)
        if lines == 1, self.matches(current, accepted) { return }
        var normal = ""
        for (index, coding) in self.codings.prefix(64).enumerated() where accepted & (1 << index) != 0 {
            if !normal.isEmpty { normal += ", " }
            normal += coding
        }
        fields[.acceptEncoding] = normal.isEmpty ? nil : normal
    }
}
