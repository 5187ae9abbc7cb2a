public import HTTPTypes

/// A cookie to set on the client (RFC 6265bis), validated when it is created.
///
/// ```swift
/// let cookie = try Cookie(name: "__Host-session", value: id, path: "/", secure: true, httpOnly: true, sameSite: .lax)
/// response.headerFields.append(HTTPField(name: .setCookie, value: cookie.setCookieValue))
/// ```
public struct Cookie: Sendable, Hashable {
    /// The `SameSite` attribute.
    public enum SameSite: String, Sendable, Hashable {
        case strict = "Strict"
        case lax = "Lax"
        case none = "None"
    }

    /// The cookie's name, a token.
    public var name: String
    /// The cookie's value, cookie-octets (encode anything else first).
    public var value: String
    /// Expiry as seconds since 1970, sent as `Expires`.
    public var expires: Int64?
    /// Lifetime in seconds, sent as `Max-Age`; `0` or less deletes the cookie.
    public var maxAge: Int?
    /// The `Domain` attribute: also sent to subdomains of it.
    public var domain: String?
    /// The `Path` attribute.
    public var path: String?
    /// Sent over secure connections only.
    public var secure: Bool
    /// Hidden from scripts.
    public var httpOnly: Bool
    /// The `SameSite` attribute.
    public var sameSite: SameSite?
    /// CHIPS: the cookie is keyed to the top-level site.
    public var partitioned: Bool

    /// Creates a cookie, refusing one that a browser would reject or that breaks a prefix's rules.
    ///
    /// - Throws: ``CookieError`` naming what to change.
    public init(
        name: String,
        value: String,
        expires: Int64? = nil,
        maxAge: Int? = nil,
        domain: String? = nil,
        path: String? = nil,
        secure: Bool = false,
        httpOnly: Bool = false,
        sameSite: SameSite? = nil,
        partitioned: Bool = false
    ) throws(CookieError) {
        self.name = name
        self.value = value
        self.expires = expires
        self.maxAge = maxAge
        self.domain = domain
        self.path = path
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
        self.partitioned = partitioned
        try self.validate()
    }

    /// Checks the cookie against RFC 6265bis and the `__Secure-`/`__Host-` prefix rules.
    public func validate() throws(CookieError) {
        guard !self.name.isEmpty, self.name.utf8.allSatisfy(\.isHTTPTokenByte) else {
            throw CookieError(.invalidName, "cookie name \(self.name.debugDescription) must be a non-empty token")
        }
        guard Self.isValidValue(self.value) else {
            throw CookieError(
                .invalidValue,
                "cookie value must be cookie-octets (no space, comma, semicolon, quote or backslash); encode it first")
        }
        for (attribute, text) in [("Domain", self.domain), ("Path", self.path)] {
            if let text, text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ";") }) {
                throw CookieError(.invalidAttribute, "\(attribute) must not contain control characters or ';'")
            }
        }
        let lowered = self.name.lowercased()
        if lowered.hasPrefix("__secure-") && !self.secure {
            throw CookieError(.prefixViolation, "a __Secure- cookie must be Secure")
        }
        if lowered.hasPrefix("__host-") && (!self.secure || self.domain != nil || self.path != "/") {
            throw CookieError(.prefixViolation, "a __Host- cookie must be Secure, have Path=/ and no Domain")
        }
        if self.sameSite == SameSite.none && !self.secure {
            throw CookieError(.insecureSameSiteNone, "SameSite=None requires Secure")
        }
        if self.partitioned && !self.secure {
            throw CookieError(.insecurePartitioned, "Partitioned requires Secure")
        }
    }

    /// The value of a `Set-Cookie` field for this cookie.
    public var setCookieValue: String {
        var text = self.name + "=" + self.value
        if let expires { text += "; Expires=" + HTTPDate.format(secondsSince1970: expires) }
        if let maxAge { text += "; Max-Age=" + String(maxAge) }
        if let domain { text += "; Domain=" + domain }
        if let path { text += "; Path=" + path }
        if self.secure { text += "; Secure" }
        if self.httpOnly { text += "; HttpOnly" }
        if let sameSite { text += "; SameSite=" + sameSite.rawValue }
        if self.partitioned { text += "; Partitioned" }
        return text
    }

    /// Parses a `Set-Cookie` field value the way a user agent does (RFC 6265bis §5.6); `nil`
    /// when it sets no cookie. Unknown attributes are ignored; the result is not validated.
    public init?(setCookieValue: String) {
        var parts = setCookieValue.split(separator: ";", omittingEmptySubsequences: false).makeIterator()
        guard let pair = parts.next(), let equals = pair.firstIndex(of: "=") else { return nil }
        let name = pair[..<equals].trimmingOWS()
        guard !name.isEmpty else { return nil }
        self.name = String(name)
        self.value = String(pair[pair.index(after: equals)...].trimmingOWS())
        self.expires = nil
        self.maxAge = nil
        self.domain = nil
        self.path = nil
        self.secure = false
        self.httpOnly = false
        self.sameSite = nil
        self.partitioned = false
        while let attribute = parts.next() {
            let split = attribute.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = split[0].trimmingOWS().lowercased()
            let argument = split.count > 1 ? String(split[1].trimmingOWS()) : ""
            switch key {
            case "expires": self.expires = HTTPDate.parse(argument)
            case "max-age": self.maxAge = Int(argument)
            case "domain": self.domain = argument.isEmpty ? nil : argument
            case "path": self.path = argument.hasPrefix("/") ? argument : nil
            case "secure": self.secure = true
            case "httponly": self.httpOnly = true
            case "samesite": self.sameSite = SameSite.allCases.first { $0.rawValue.equalsIgnoringASCIICase(argument) }
            case "partitioned": self.partitioned = true
            default: continue
            }
        }
    }

    static func isValidValue(_ value: String) -> Bool {
        var bytes = value.utf8[...]
        if bytes.count >= 2, bytes.first == UInt8(ascii: "\""), bytes.last == UInt8(ascii: "\"") {
            bytes = bytes.dropFirst().dropLast()
        }
        return bytes.allSatisfy { byte in
            byte == 0x21 || (0x23...0x2B).contains(byte) || (0x2D...0x3A).contains(byte)
                || (0x3C...0x5B).contains(byte) || (0x5D...0x7E).contains(byte)
        }
    }
}

extension Cookie.SameSite: CaseIterable {}

/// Why a ``Cookie`` was refused.
public struct CookieError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable {
        case invalidName, invalidValue, invalidAttribute, prefixViolation, insecureSameSiteNone, insecurePartitioned
    }

    /// The kind of problem.
    public let code: Code
    /// What is wrong and what to change.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "CookieError.\(self.code): \(self.message)" }
}

/// The cookies a request carries, parsed from its `Cookie` field lines.
public struct RequestCookies: Sendable, Sequence {
    /// The name/value pairs in the order sent; a name can repeat.
    public let pairs: [(name: String, value: String)]

    /// Parses every `Cookie` field line; pairs without `=` or with an empty name are skipped.
    public init(_ fields: HTTPFields) {
        var pairs: [(name: String, value: String)] = []
        for field in fields where field.name == .cookie {
            for piece in field.value.split(separator: ";") {
                guard let equals = piece.firstIndex(of: "=") else { continue }
                let name = piece[..<equals].trimmingOWS()
                guard !name.isEmpty else { continue }
                var value = piece[piece.index(after: equals)...].trimmingOWS()
                if value.count >= 2, value.first == "\"", value.last == "\"" {
                    value = value.dropFirst().dropLast()
                }
                pairs.append((String(name), String(value)))
            }
        }
        self.pairs = pairs
    }

    /// The first value sent for `name`.
    public subscript(name: String) -> String? {
        self.pairs.first { $0.name == name }?.value
    }

    /// Iterates the pairs in the order sent.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        self.pairs.makeIterator()
    }
}

extension HTTPFields {
    /// The request's cookies.
    public var cookies: RequestCookies { RequestCookies(self) }

    /// Appends a `Set-Cookie` field for `cookie`.
    public mutating func setCookie(_ cookie: Cookie) {
        self.append(HTTPField(name: .setCookie, value: cookie.setCookieValue))
    }
}
