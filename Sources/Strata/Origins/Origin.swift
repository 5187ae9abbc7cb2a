/// A web origin (scheme, host, port), parsed and normalised so that origins compare as values,
/// not as strings: scheme and host lowercased, internationalised hosts in their `xn--` form,
/// default ports dropped.
///
/// ```swift
/// Origin("HTTPS://Bücher.Example:443")?.serialized  // "https://xn--bcher-kva.example"
/// ```
public struct Origin: Sendable, Hashable, CustomStringConvertible {
    /// The scheme, lowercased (`https`).
    public let scheme: String
    /// The host, lowercased ASCII; IPv6 addresses keep their brackets.
    public let host: String
    /// The port, or `nil` for the scheme's default.
    public let port: Int?

    /// Parses a serialised origin as browsers send it in `Origin`: `scheme://host[:port]`, with
    /// no path, query, fragment or user information. `nil` for anything else, including `null`.
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        guard let separator = Self.schemeSeparator(in: text) else { return nil }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard let first = scheme.utf8.first, Self.isLowercaseLetter(first), scheme.utf8.allSatisfy(Self.isSchemeByte)
        else {
            return nil
        }
        let authority = text[separator.upperBound...]
        guard !authority.isEmpty,
            !authority.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "@" || $0 == " " || $0 == "\\" })
        else { return nil }
        var hostPart = Substring(authority)
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[...close]
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return nil }
                portPart = rest.dropFirst()
            }
            guard IPAddress(hostPart.dropFirst().dropLast()).map({ !$0.isIPv4 }) == true else { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        var port: Int?
        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy(\.isASCII), let value = Int(portPart),
                (0...65535).contains(value)
            else { return nil }
            port = value
        }
        let asciiHost =
            hostPart.utf8.allSatisfy { $0 < 0x80 } ? hostPart.lowercased() : Punycode.asciiHost(String(hostPart))
        guard !hostPart.isEmpty, let host = asciiHost, !host.isEmpty,
            host.hasPrefix("[") || host.utf8.allSatisfy({ Self.isHostByte($0) }),
            !host.hasPrefix("."), !host.hasSuffix(".") || host.count > 1
        else { return nil }
        if port == Self.defaultPort(scheme) { port = nil }
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// The origin as browsers serialise it: `https://example.com` or `http://localhost:8080`.
    public var serialized: String {
        self.port.map { "\(self.scheme)://\(self.host):\($0)" } ?? "\(self.scheme)://\(self.host)"
    }

    public var description: String { self.serialized }

    /// The port the origin uses, default ports included.
    public var effectivePort: Int? { self.port ?? Self.defaultPort(self.scheme) }

    /// The port a scheme uses when an origin names none: 80 for `http`/`ws`, 443 for `https`/`wss`.
    public static func defaultPort(_ scheme: String) -> Int? {
        switch scheme {
        case "http", "ws": 80
        case "https", "wss": 443
        default: nil
        }
    }

    /// The range of the first `://`, found on the bytes (no string-processing machinery).
    static func schemeSeparator(in text: String) -> Range<String.Index>? {
        let bytes = text.utf8
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: ":") {
                let slash1 = bytes.index(after: index)
                if slash1 < bytes.endIndex, bytes[slash1] == UInt8(ascii: "/") {
                    let slash2 = bytes.index(after: slash1)
                    if slash2 < bytes.endIndex, bytes[slash2] == UInt8(ascii: "/") {
                        return index..<bytes.index(after: slash2)
                    }
                }
                return nil
            }
            index = bytes.index(after: index)
        }
        return nil
    }

    private static func isLowercaseLetter(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
    }

    /// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, already lowercased.
    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        Self.isLowercaseLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"),
            UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}

/// Which origins a policy allows: the pattern syntax shared by CORS and WebSocket origin checks.
///
/// - `https://example.com`: exactly that origin (normalised: `https://EXAMPLE.com:443` is the
///   same).
/// - `https://*.example.com`: any subdomain, at any depth, of `example.com` over https, matched
///   label by label, so `https://evil-example.com` and `https://example.com` do not match.
/// - `http://localhost:*`: that scheme and host on any port.
/// - `*`: any origin (never `null`).
///
/// The `null` origin is never matched by a pattern; allow it explicitly with ``allowsNull``.
public struct OriginPattern: Sendable, Hashable, CustomStringConvertible {
    /// What the pattern matches.
    public enum Kind: Sendable, Hashable {
        case exact(Origin)
        case subdomains(scheme: String, baseHost: String, port: Int?)
        case anyPort(scheme: String, host: String)
        case any
    }

    /// What the pattern matches.
    public let kind: Kind
    /// The pattern as written.
    public let text: String

    /// Parses a pattern.
    ///
    /// - Throws: ``OriginPatternError`` saying what is wrong with `text`.
    public init(_ text: String) throws(OriginPatternError) {
        self.text = text
        if text == "*" {
            self.kind = .any
            return
        }
        if text == "null" {
            throw OriginPatternError(
                text: text,
                reason:
                    "the null origin cannot be a pattern; it is sent by sandboxed and file: documents, which any site can create"
            )
        }
        if text.hasSuffix(":*") {
            guard let origin = Origin(text.dropLast(2)), origin.port == nil, !text.dropLast(2).hasSuffix(":") else {
                throw OriginPatternError(text: text, reason: "expected scheme://host:* (any port)")
            }
            if origin.host.contains("*") {
                throw OriginPatternError(
                    text: text, reason: "a pattern cannot combine a subdomain wildcard with any port")
            }
            self.kind = .anyPort(scheme: origin.scheme, host: origin.host)
            return
        }
        if let separator = Origin.schemeSeparator(in: text), text[separator.upperBound...].hasPrefix("*.") {
            let scheme = String(text[..<separator.lowerBound])
            guard let base = Origin(scheme + "://" + text[separator.upperBound...].dropFirst(2)),
                !base.host.hasPrefix("[")
            else {
                throw OriginPatternError(text: text, reason: "expected scheme://*.domain[:port]")
            }
            if IPAddress(base.host) != nil {
                throw OriginPatternError(text: text, reason: "an IP address has no subdomains")
            }
            self.kind = .subdomains(scheme: base.scheme, baseHost: base.host, port: base.port)
            return
        }
        if text.contains("*") {
            throw OriginPatternError(
                text: text, reason: "a wildcard may only be a leading *. label, a :* port, or the whole pattern")
        }
        guard let origin = Origin(text) else {
            throw OriginPatternError(
                text: text,
                reason: "not an origin: expected scheme://host[:port] with no path, like https://example.com")
        }
        self.kind = .exact(origin)
    }

    /// Whether `origin` is allowed by this pattern.
    public func matches(_ origin: Origin) -> Bool {
        switch self.kind {
        case .any:
            return true
        case .exact(let allowed):
            return allowed == origin
        case .anyPort(let scheme, let host):
            return origin.scheme == scheme && origin.host == host
        case .subdomains(let scheme, let baseHost, let port):
            guard origin.scheme == scheme, origin.port == port, origin.host.count > baseHost.count + 1 else {
                return false
            }
            return origin.host.hasSuffix("." + baseHost)
        }
    }

    /// The scheme the pattern requires, if any.
    public var scheme: String? {
        switch self.kind {
        case .any: nil
        case .exact(let origin): origin.scheme
        case .anyPort(let scheme, _), .subdomains(let scheme, _, _): scheme
        }
    }

    public var description: String { self.text }
}

/// An origin pattern that could not be parsed.
public struct OriginPatternError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let text: String
    /// What is wrong with it.
    public let reason: String
    public var description: String { "\(self.text.debugDescription): \(self.reason)" }
}

/// A set of origin patterns, matched fast: exact origins by hash, the rest in order.
public struct OriginMatcher: Sendable {
    /// The patterns, normalised.
    public let patterns: [OriginPattern]
    /// Whether the `null` origin is allowed (only when configured explicitly).
    public let allowsNull: Bool
    private let exact: Set<Origin>
    /// The exact origins as browsers serialise them, so the common case is one hash lookup.
    private let exactSerialized: Set<String>
    private let others: [OriginPattern]
    /// Whether `*` is among the patterns.
    public let allowsAny: Bool

    /// Builds a matcher from parsed patterns.
    public init(_ patterns: [OriginPattern], allowsNull: Bool = false) {
        self.patterns = patterns
        self.allowsNull = allowsNull
        var exact = Set<Origin>()
        var others: [OriginPattern] = []
        for pattern in patterns {
            if case .exact(let origin) = pattern.kind { exact.insert(origin) } else { others.append(pattern) }
        }
        self.exact = exact
        self.exactSerialized = Set(exact.map(\.serialized))
        self.others = others
        self.allowsAny = patterns.contains { $0.kind == .any }
    }

    /// Whether the `Origin` field value `value` is allowed.
    public func allows(_ value: some StringProtocol) -> Bool {
        if value == "null" { return self.allowsNull }
        if self.exactSerialized.contains(String(value)) { return true }
        guard let origin = Origin(value) else { return false }
        return self.allows(origin)
    }

    /// Whether `origin` is allowed.
    public func allows(_ origin: Origin) -> Bool {
        if self.exact.contains(origin) { return true }
        return self.others.contains { $0.matches(origin) }
    }
}
