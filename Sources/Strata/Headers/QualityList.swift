public import HTTPTypes

/// A parsed list of values with quality weights, such as `Accept-Encoding: gzip;q=0.8, br`.
///
/// Weights are kept in thousandths (RFC 9110 §12.4.2: `q=0.8` is 800, no `q` is 1000). An element
/// whose weight is malformed is dropped, so a malformed header never traps and never wins.
public struct QualityList: Sendable, Equatable {
    /// One element of the list.
    public struct Element: Sendable, Equatable {
        /// The value, as sent (compare it ignoring case).
        public var value: String
        /// The weight in thousandths, 0...1000.
        public var quality: Int
        /// Other parameters, names lowercased.
        public var parameters: [String: String]
    }

    /// The elements in the order they were sent.
    public var elements: [Element]

    /// Parses every field line of `name` in `fields`.
    public init(_ fields: HTTPFields, name: HTTPField.Name) {
        self.elements = []
        for element in fields.listElements(name) {
            if let parsed = Self.parse(element) { self.elements.append(parsed) }
        }
    }

    /// Parses one field value.
    public init(_ value: String) {
        self.elements = []
        ListParser.forEachElement(value[...]) { element in
            if let parsed = Self.parse(element) { self.elements.append(parsed) }
        }
    }

    /// Calls `body` with each well-formed element's value and weight, in order, without building
    /// a list: the allocation-free way to negotiate on a hot path. Malformed elements are skipped.
    public static func forEachElement(
        in fields: HTTPFields,
        name: HTTPField.Name,
        _ body: (_ value: Substring, _ quality: Int) -> Void
    ) {
        for field in fields where field.name.isSame(as: name) {
            // Bytes only (UTF-8 view): no character segmentation, no intermediate arrays.
            ListParser.forEachElement(field.value[...]) { element in
                let utf8 = element.utf8
                var quality = 1000
                var valueEnd = utf8.endIndex
                if let semicolon = utf8.firstIndex(of: UInt8(ascii: ";")) {
                    valueEnd = semicolon
                    var cursor = utf8.index(after: semicolon)
                    while cursor < utf8.endIndex {
                        let end = utf8[cursor...].firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
                        defer { cursor = end < utf8.endIndex ? utf8.index(after: end) : end }
                        // Empty parameters (`;;`) are skipped, as a split would.
                        if cursor == end { continue }
                        let parameter = element[cursor..<end]
                        let equals = parameter.utf8.firstIndex(of: UInt8(ascii: "="))
                        let key = parameter[..<(equals ?? parameter.endIndex)].trimmingOWS()
                        if key.isEmpty { return }
                        guard key.equalsIgnoringASCIICase("q") else { continue }
                        guard let equals,
                            let parsed = Self.parseQValue(
                                parameter[parameter.utf8.index(after: equals)...].trimmingOWS())
                        else { return }
                        quality = parsed
                    }
                }
                let value = element[..<valueEnd].trimmingOWS()
                guard !value.isEmpty, value.utf8.allSatisfy({ $0.isHTTPTokenByte || $0 == UInt8(ascii: "/") }) else {
                    return
                }
                body(value, quality)
            }
        }
    }

    /// The weight the list gives `value`: its own element, else `*`, else `nil` (not mentioned).
    public func quality(of value: String) -> Int? {
        var wildcard: Int?
        for element in self.elements {
            if element.value.equalsIgnoringASCIICase(value) { return element.quality }
            if element.value == "*" { wildcard = element.quality }
        }
        return wildcard
    }

    private static func parse(_ element: Substring) -> Element? {
        var parts = element.split(separator: ";", omittingEmptySubsequences: false).makeIterator()
        guard let value = parts.next()?.trimmingOWS(), !value.isEmpty,
            value.allSatisfy({ $0.isHTTPTokenCharacter || $0 == "/" })  // tokens, and media ranges for Accept
        else {
            return nil
        }
        var quality = 1000
        var parameters: [String: String] = [:]
        while let parameter = parts.next() {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = pair[0].trimmingOWS().lowercased()
            guard !name.isEmpty else { return nil }
            let raw = pair.count > 1 ? pair[1].trimmingOWS() : ""
            if name == "q" {
                guard let parsed = Self.parseQValue(raw) else { return nil }
                quality = parsed
            } else {
                parameters[name] = String(raw)
            }
        }
        return Element(value: String(value), quality: quality, parameters: parameters)
    }

    /// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`
    static func parseQValue(_ text: Substring) -> Int? {
        var bytes = text.utf8.makeIterator()
        guard let first = bytes.next(), first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        var value = Int(first - UInt8(ascii: "0")) * 1000
        guard let dot = bytes.next() else { return value }
        guard dot == UInt8(ascii: ".") else { return nil }
        var scale = 100
        while let digit = bytes.next() {
            guard scale > 0, digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value += Int(digit - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        return value <= 1000 ? value : nil
    }
}

extension Character {
    /// Whether this is a `tchar` (RFC 9110 §5.6.2).
    @usableFromInline
    var isHTTPTokenCharacter: Bool {
        guard let ascii = self.asciiValue else { return false }
        return ascii.isHTTPTokenByte
    }
}

extension UInt8 {
    /// Whether this byte is a `tchar` (RFC 9110 §5.6.2): what methods and field names are made of.
    public var isHTTPTokenByte: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
