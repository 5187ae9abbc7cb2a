import Strata

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
