public import HTTPTypes
import RawStructuredFieldValues

/// The fields of draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy, RateLimit) and the
/// legacy X-RateLimit-* trio, serialised as RFC 9651 structured fields.
public enum RateLimitHeaders {
    /// `RateLimit-Policy`: one member per policy, `"name";q=<quota>;w=<seconds>`.
    public static let policyName = HTTPField.Name("RateLimit-Policy")!
    /// `RateLimit`: one member per policy, `"name";r=<remaining>;t=<seconds>`.
    public static let rateLimitName = HTTPField.Name("RateLimit")!
    static let legacyLimit = HTTPField.Name("X-RateLimit-Limit")!
    static let legacyRemaining = HTTPField.Name("X-RateLimit-Remaining")!
    static let legacyReset = HTTPField.Name("X-RateLimit-Reset")!

    /// The `RateLimit-Policy` value for `limits`.
    public static func policyValue(_ limits: [QuotaLimits]) -> String {
        let items = limits.map { limits -> ItemOrInnerList in
            var parameters = OrderedMap<String, BareItem>()
            parameters["q"] = .integer(limits.advertisedQuota)
            parameters["w"] = .integer(limits.advertisedWindowSeconds)
            return .item(Item(bareItem: .string(limits.name), parameters: parameters))
        }
        return Self.serialise(items)
    }

    /// The `RateLimit` value for the outcomes of `limits`.
    public static func rateLimitValue(_ limits: some Collection<QuotaLimits>, _ outcomes: [QuotaOutcome]) -> String {
        let items = zip(limits, outcomes).map { limits, outcome -> ItemOrInnerList in
            var parameters = OrderedMap<String, BareItem>()
            parameters["r"] = .integer(max(0, outcome.remaining))
            parameters["t"] = .integer(outcome.resetSeconds)
            return .item(Item(bareItem: .string(limits.name), parameters: parameters))
        }
        return Self.serialise(items)
    }

    /// The name of a policy as a structured-field string (`"burst"`), serialised once.
    static func serialisedName(_ name: String) -> String {
        var serializer = StructuredFieldValueSerializer()
        // Names are validated at init (printable ASCII, no quote or backslash).
        guard
            let bytes = try? serializer.writeItemFieldValue(
                Item(bareItem: BareItem.string(name), parameters: OrderedMap<String, BareItem>()))
        else { return "\"\"" }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The `RateLimit` value per request, from names serialised once by
    /// ``serialisedName(_:)``: only two non-negative integers change, written as decimal
    /// digits, which is an sf-integer's whole serialisation. Equal to ``rateLimitValue(_:_:)``
    /// (tested), without building an item tree per response.
    static func rateLimitValue(names: [String], outcomes: [QuotaOutcome], indices: [Int]) -> String {
        var value = ""
        value.reserveCapacity(indices.count * 32)
        for (position, outcome) in outcomes.enumerated() {
            if position > 0 { value += ", " }
            value += names[indices[position]]
            value += ";r="
            value += String(max(0, outcome.remaining))
            value += ";t="
            value += String(outcome.resetSeconds)
        }
        return value
    }

    /// The `RateLimit` value of one policy, `<name>;r=<remaining>;t=<reset>`, from its name
    /// serialised once: one allocation of the exact size, no intermediate strings.
    static func rateLimitValue(name: String, remaining: Int64, reset: Int64) -> String {
        let remaining = max(0, remaining)
        // A reset is never negative; if one were, the general form writes its sign.
        guard reset >= 0 else { return "\(name);r=\(remaining);t=\(reset)" }
        let count = name.utf8.count + 6 + Self.decimalDigits(remaining) + Self.decimalDigits(reset)
        return String(unsafeUninitializedCapacity: count) { buffer in
            var index = 0
            func put(_ byte: UInt8) {
                buffer[index] = byte
                index += 1
            }
            func putDecimal(_ value: Int64) {
                let digits = Self.decimalDigits(value)
                var rest = value
                for offset in stride(from: digits - 1, through: 0, by: -1) {
                    buffer[index + offset] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                }
                index += digits
            }
            for byte in name.utf8 { put(byte) }
            for byte in ";r=".utf8 { put(byte) }
            putDecimal(remaining)
            for byte in ";t=".utf8 { put(byte) }
            putDecimal(reset)
            return index
        }
    }

    /// How many decimal digits a non-negative `value` has.
    private static func decimalDigits(_ value: Int64) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    private static func serialise(_ items: [ItemOrInnerList]) -> String {
        var serializer = StructuredFieldValueSerializer()
        // Names are validated at init (printable ASCII, no quote or backslash) and numbers
        // are in range, so this cannot fail; an empty string would only drop the field.
        guard let bytes = try? serializer.writeListFieldValue(items) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }
}
