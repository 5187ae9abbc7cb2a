public import HTTPTypes
import Strata

/// The directives of a `Cache-Control` field (or of a targeted field such as `CDN-Cache-Control`),
/// request or response (RFC 9111 §5.2, RFC 5861, RFC 9213).
///
/// Parsing is lenient where the RFC asks recipients to be: names are case-insensitive, quoted
/// values are unquoted, and an unknown directive is ignored. A `max-age` or `s-maxage` whose
/// value is not a non-negative integer makes the response stale (`0`), as RFC 9111 §4.2.1 asks;
/// a value too large to represent becomes 2³¹ (§1.2.2). When a directive repeats, the first one
/// wins.
public struct CacheDirectives: Sendable, Hashable {
    /// `max-age`, in seconds.
    public var maxAge: Int?
    /// `s-maxage`, in seconds (shared caches only).
    public var sharedMaxAge: Int?
    /// `no-cache` without field names: every use needs validation.
    public var noCache = false
    /// The field names of `no-cache="..."`: those fields are not stored.
    public var noCacheFields: [String] = []
    /// `no-store`.
    public var noStore = false
    /// `no-transform`.
    public var noTransform = false
    /// `must-revalidate`.
    public var mustRevalidate = false
    /// `proxy-revalidate` (shared caches only).
    public var proxyRevalidate = false
    /// `must-understand`.
    public var mustUnderstand = false
    /// `public`.
    public var isPublic = false
    /// `private` without field names.
    public var isPrivate = false
    /// The field names of `private="..."`: a shared cache stores the response without them.
    public var privateFields: [String] = []
    /// `immutable` (RFC 8246).
    public var immutable = false
    /// `stale-while-revalidate`, in seconds (RFC 5861).
    public var staleWhileRevalidate: Int?
    /// `stale-if-error`, in seconds (RFC 5861).
    public var staleIfError: Int?
    /// Request `max-stale`: `Int.max` when it has no value (any staleness).
    public var maxStale: Int?
    /// Request `min-fresh`, in seconds.
    public var minFresh: Int?
    /// Request `only-if-cached`.
    public var onlyIfCached = false

    /// No directives.
    public init() {}

    /// The largest delta-seconds a cache must represent (RFC 9111 §1.2.2).
    static let deltaSecondsCeiling = 2_147_483_648

    /// Parses every `name` field line of `fields`.
    public init(_ fields: HTTPFields, name: HTTPField.Name = .cacheControl) {
        self.init()
        var seen: UInt32 = 0
        fields.forEachListElement(name) { self.apply($0, seen: &seen) }
    }

    /// Whether `fields` has a `name` field that parses as directives; a targeted field
    /// (RFC 9213) that is present but not a valid structured dictionary is ignored.
    static func targetedField(_ fields: HTTPFields, name: HTTPField.Name) -> CacheDirectives? {
        guard fields.contains(name) else { return nil }
        var directives = CacheDirectives()
        var seen: UInt32 = 0
        var valid = true
        fields.forEachListElement(name) { element in
            let key = DirectiveElement.name(of: element)
            // A structured-field dictionary key: lower case letter or `*`, then lcalpha,
            // digits, `_-.*`.
            guard let first = key.utf8.first, (first >= 0x61 && first <= 0x7A) || first == 0x2A,
                key.utf8.allSatisfy({
                    ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || "_-.*".utf8.contains($0)
                })
            else {
                valid = false
                return
            }
            directives.apply(element, seen: &seen)
        }
        return valid ? directives : nil
    }

    /// The directives this cache knows, in the order of the bits of `seen`.
    private static let known = [
        "max-age", "s-maxage", "no-cache", "no-store", "no-transform", "must-revalidate", "proxy-revalidate",
        "must-understand", "public", "private", "immutable", "stale-while-revalidate", "stale-if-error",
        "max-stale", "min-fresh", "only-if-cached",
    ]

    /// Applies one directive, unless one of the same name came first (`seen` has a bit per
    /// known name). Names compare ignoring case, without allocating.
    private mutating func apply(_ element: Substring, seen: inout UInt32) {
        let name = DirectiveElement.name(of: element)
        guard let index = Self.known.firstIndex(where: { name.equalsIgnoringASCIICase($0) }) else { return }
        guard seen & (1 << index) == 0 else { return }
        seen |= 1 << index
        let value = DirectiveElement.value(of: element)
        switch index {
        case 0: self.maxAge = Self.seconds(value)
        case 1: self.sharedMaxAge = Self.seconds(value)
        case 2:
            if let value, !value.isEmpty { self.noCacheFields = Self.fieldNames(value) } else { self.noCache = true }
        case 3: self.noStore = true
        case 4: self.noTransform = true
        case 5: self.mustRevalidate = true
        case 6: self.proxyRevalidate = true
        case 7: self.mustUnderstand = true
        case 8: self.isPublic = true
        case 9:
            if let value, !value.isEmpty { self.privateFields = Self.fieldNames(value) } else { self.isPrivate = true }
        case 10: self.immutable = true
        case 11: self.staleWhileRevalidate = Self.seconds(value)
        case 12: self.staleIfError = Self.seconds(value)
        case 13: self.maxStale = value == nil ? Int.max : Self.seconds(value)
        case 14: self.minFresh = Self.seconds(value)
        default: self.onlyIfCached = true
        }
    }

    /// A delta-seconds value; `0` when missing or invalid, the ceiling when too large.
    static func seconds(_ value: Substring?) -> Int {
        guard let value, !value.isEmpty, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return 0 }
        if value.utf8.count > 10 { return Self.deltaSecondsCeiling }
        return min(Int(value) ?? Self.deltaSecondsCeiling, Self.deltaSecondsCeiling)
    }

    private static func fieldNames(_ value: Substring) -> [String] {
        value.split(separator: ",").map { $0.trimmingOWS().lowercased() }.filter { !$0.isEmpty }
    }
}

/// The name and the unquoted value of one list element (`name=value`, `name="value"`).
enum DirectiveElement {
    static func name(of element: Substring) -> Substring {
        let end =
            element.utf8.firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ";") })
            ?? element.endIndex
        return element[..<end].trimmingOWS()
    }

    static func value(of element: Substring) -> Substring? {
        guard let equals = element.utf8.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        var value = element[element.utf8.index(after: equals)...].trimmingOWS()
        // Bytes, not characters: no grapheme breaking on the hot path.
        if value.utf8.first == UInt8(ascii: "\"") {
            value = value[value.utf8.index(after: value.utf8.startIndex)...]
            if value.utf8.last == UInt8(ascii: "\"") { value = value[..<value.utf8.index(before: value.utf8.endIndex)] }
            if value.utf8.contains(UInt8(ascii: "\\")) {
                var unescaped = ""
                var escaped = false
                for character in value {
                    if !escaped, character == "\\" {
                        escaped = true
                        continue
                    }
                    escaped = false
                    unescaped.append(character)
                }
                return unescaped[...]
            }
        }
        return value
    }
}
