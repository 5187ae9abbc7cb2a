public import Strata

/// A session ID: 256 bits from the system's CSPRNG, written in base64url (43 characters).
///
/// The server only ever uses IDs it issued (OWASP strict mode): a cookie whose value is not
/// of this form is ignored, and one of this form that the store does not know starts no
/// session under that value.
public struct SessionID: Sendable, Hashable, CustomStringConvertible {
    /// The 43 base64url characters, as sent in the cookie.
    public let token: String

    /// A new random ID.
    public init() {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in stride(from: 0, to: 32, by: 8) {
            var word = generator.next()
            for offset in 0..<8 {
                bytes[index + offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
        }
        self.token = Base64URL.encode(bytes)
    }

    /// The ID a cookie carries, or `nil` if the value is not a well-formed ID.
    public init?(token: some StringProtocol) {
        let utf8 = Array(token.utf8)
        guard utf8.count == 43, utf8.allSatisfy(Base64URL.isAlphabet),
            // 256 bits leave the last character's two low bits zero.
            let last = utf8.last, Base64URL.value(of: last).map({ $0 & 0b11 == 0 }) == true
        else { return nil }
        self.token = String(token)
    }

    /// A stable, non-secret handle for listings and logs: hex of a digest of the ID.
    public var handle: String { String(SHA1.hexDigest(Array(self.token.utf8)).prefix(16)) }

    /// The handle: an ID is a secret and never printed.
    public var description: String { "session \(self.handle)" }
}

/// base64url without padding (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = iterator.next()
            let chunk = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
            output.append(Self.alphabet[Int(chunk >> 18 & 63)])
            output.append(Self.alphabet[Int(chunk >> 12 & 63)])
            if second != nil { output.append(Self.alphabet[Int(chunk >> 6 & 63)]) }
            if third != nil { output.append(Self.alphabet[Int(chunk & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            guard let value = Self.value(of: character) else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // A lone character (6 bits) cannot end a valid encoding.
        guard bits < 6 else { return nil }
        return output
    }

    static func isAlphabet(_ character: UInt8) -> Bool { Self.value(of: character) != nil }

    static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
