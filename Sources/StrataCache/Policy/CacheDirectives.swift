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
        for field in fields where field.name.isSame(as: name) {
            _ = self.parse(line: field.value, seen: &seen, dictionaryKeys: false)
        }
    }

    /// Whether `fields` has a `name` field that parses as directives; a targeted field
    /// (RFC 9213) that is present but not a valid structured dictionary is ignored.
    static func targetedField(_ fields: HTTPFields, name: HTTPField.Name) -> CacheDirectives? {
        guard fields.has(name) else { return nil }
        var directives = CacheDirectives()
        var seen: UInt32 = 0
        var valid = true
        for field in fields where field.name.isSame(as: name) {
            if !directives.parse(line: field.value, seen: &seen, dictionaryKeys: true) { valid = false }
        }
        return valid ? directives : nil
    }

    /// The directives this cache knows, in the order of the bits of `seen`.
    private static let known: [[UInt8]] = [
        "max-age", "s-maxage", "no-cache", "no-store", "no-transform", "must-revalidate", "proxy-revalidate",
        "must-understand", "public", "private", "immutable", "stale-while-revalidate", "stale-if-error",
        "max-stale", "min-fresh", "only-if-cached",
    ].map { Array($0.utf8) }

    /// Applies each directive of one field line, walking its bytes: elements split at commas
    /// outside quoted strings, trimmed of whitespace, empty ones skipped (RFC 9110 §5.6.1); a
    /// name ends at `=` or `;`. With `dictionaryKeys`, returns `false` when a name is not a
    /// structured-field dictionary key (that element is then not applied).
    private mutating func parse(line: String, seen: inout UInt32, dictionaryKeys: Bool) -> Bool {
        var line = line
        return line.withUTF8 { bytes in
            var valid = true
            var start = 0
            var inQuotes = false
            var escaped = false
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if escaped {
                    escaped = false
                } else if inQuotes {
                    if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inQuotes = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inQuotes = true
                } else if byte == UInt8(ascii: ",") {
                    if !self.apply(bytes[start..<index], seen: &seen, dictionaryKeys: dictionaryKeys) { valid = false }
                    start = index + 1
                }
            }
            if !self.apply(bytes[start..<bytes.count], seen: &seen, dictionaryKeys: dictionaryKeys) { valid = false }
            return valid
        }
    }

    /// Applies one directive, unless one of the same name came first (`seen` has a bit per
    /// known name); `false` when `dictionaryKeys` and its name is not a dictionary key.
    private mutating func apply(_ element: Slice<UnsafeBufferPointer<UInt8>>, seen: inout UInt32, dictionaryKeys: Bool)
        -> Bool
    {
        let element = Self.trimmed(element)
        guard !element.isEmpty else { return true }
        let equals = element.firstIndex(of: UInt8(ascii: "="))
        let nameEnd = element.firstIndex { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ";") } ?? element.endIndex
        let name = Self.trimmed(element[..<nameEnd])
        if dictionaryKeys, !Self.isDictionaryKey(name) { return false }
        guard let index = Self.known.firstIndex(where: { Self.equalsIgnoringCase(name, $0) }) else { return true }
        guard seen & (1 << index) == 0 else { return true }
        seen |= 1 << index
        let value = equals.map { element[($0 + 1)...] }
        switch index {
        case 0: self.maxAge = Self.seconds(value)
        case 1: self.sharedMaxAge = Self.seconds(value)
        case 2:
            if let names = Self.fieldNames(value) { self.noCacheFields = names } else { self.noCache = true }
        case 3: self.noStore = true
        case 4: self.noTransform = true
        case 5: self.mustRevalidate = true
        case 6: self.proxyRevalidate = true
        case 7: self.mustUnderstand = true
        case 8: self.isPublic = true
        case 9:
            if let names = Self.fieldNames(value) { self.privateFields = names } else { self.isPrivate = true }
        case 10: self.immutable = true
        case 11: self.staleWhileRevalidate = Self.seconds(value)
        case 12: self.staleIfError = Self.seconds(value)
        case 13: self.maxStale = value == nil ? Int.max : Self.seconds(value)
        case 14: self.minFresh = Self.seconds(value)
        default: self.onlyIfCached = true
        }
        return true
    }

    /// `bytes` without optional whitespace (space and tab) at either end.
    private static func trimmed(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return bytes[start..<end]
    }

    /// Calls `body` with a value's bytes, trimmed, its quotes removed and its escapes resolved
    /// (`"a\\"b"` is `a"b`); copied only when it has escapes.
    private static func withUnquoted<Result>(
        _ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ body: (Slice<UnsafeBufferPointer<UInt8>>) -> Result
    ) -> Result {
        var value = Self.trimmed(bytes)
        guard value.first == UInt8(ascii: "\"") else { return body(value) }
        value = value.dropFirst()
        if value.last == UInt8(ascii: "\"") { value = value.dropLast() }
        guard value.contains(UInt8(ascii: "\\")) else { return body(value) }
        var unescaped: [UInt8] = []
        unescaped.reserveCapacity(value.count)
        var escaped = false
        for byte in value {
            if !escaped, byte == UInt8(ascii: "\\") {
                escaped = true
                continue
            }
            escaped = false
            unescaped.append(byte)
        }
        return unescaped.withUnsafeBufferPointer { body($0[...]) }
    }

    private static func equalsIgnoringCase(_ name: Slice<UnsafeBufferPointer<UInt8>>, _ known: [UInt8]) -> Bool {
        guard name.count == known.count else { return false }
        for (byte, expected) in zip(name, known) {
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != expected { return false }
        }
        return true
    }

    /// A structured-field dictionary key: a lower-case letter or `*`, then lower-case letters,
    /// digits and `_-.*` (RFC 8941 §3.2).
    private static func isDictionaryKey(_ name: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard let first = name.first, (first >= 0x61 && first <= 0x7A) || first == 0x2A else { return false }
        return name.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E
                || $0 == 0x2A
        }
    }

    /// A delta-seconds value (the bytes after `=`); `0` when missing or invalid, the ceiling
    /// when too large.
    private static func seconds(_ raw: Slice<UnsafeBufferPointer<UInt8>>?) -> Int {
        guard let raw else { return 0 }
        return Self.withUnquoted(raw) { Self.deltaSeconds($0) }
    }

    /// The field names of `no-cache="..."` or `private="..."` (the bytes after `=`), lower-cased;
    /// `nil` when there is no value or it is empty.
    private static func fieldNames(_ raw: Slice<UnsafeBufferPointer<UInt8>>?) -> [String]? {
        guard let raw else { return nil }
        return Self.withUnquoted(raw) { value -> [String]? in
            guard !value.isEmpty else { return nil }
            return String(decoding: value, as: UTF8.self).split(separator: ",").map { $0.trimmingOWS().lowercased() }
                .filter { !$0.isEmpty }
        }
    }

    /// A delta-seconds value; `0` when missing or invalid, the ceiling when too large.
    static func seconds(_ value: Substring?) -> Int {
        guard let value else { return 0 }
        return Self.deltaSeconds(value.utf8)
    }

    /// Digits as delta-seconds (RFC 9111 §1.2.2): `0` when empty or not all digits, the
    /// ceiling when too large.
    private static func deltaSeconds(_ digits: some Collection<UInt8>) -> Int {
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return 0 }
        if digits.count > 10 { return Self.deltaSecondsCeiling }
        var seconds = 0
        for byte in digits { seconds = seconds * 10 + Int(byte - 0x30) }
        return min(seconds, Self.deltaSecondsCeiling)
    }
}
