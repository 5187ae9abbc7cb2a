public import Crypto
import FoundationEssentials
public import Strata
public import StrataSessions

/// Seals a whole session into its cookie with ChaCha20-Poly1305, so no server-side store is
/// needed.
///
/// - **Authenticated encryption.** The cookie value is base64url of a random nonce, the
///   ciphertext and the tag: reading or changing it needs the key.
/// - **Bound to its cookie.** The cookie's name and ``purpose`` are the associated data, so a
///   value sealed for one cookie does not open under another name.
/// - **Expiry inside.** The expiry is sealed with the data; an expired value does not open,
///   whatever the cookie's `Max-Age` or a client's clock say.
/// - **Key rotation.** The first key seals; every key opens. Put a new key first and keep the
///   old ones until the cookies they sealed have expired; drop a key to reject everything it
///   sealed.
///
/// What a cookie store cannot do: revoke a session before it expires (a copied cookie stays
/// valid until then; rotate the key to end them all), list a user's sessions, or merge the
/// changes of parallel requests (the cookie of the response that arrives last wins). The
/// sealed session must fit in a 4,096-byte `Set-Cookie`; a larger one fails at commit with
/// ``SessionError/Code/cookieTooLarge``.
///
/// ```swift
/// let sealer = try EncryptedCookieSealer(keys: [currentKey, previousKey])
/// let sessions = try SessionMiddleware<BasicContext>(sealer: sealer)
/// ```
public struct EncryptedCookieSealer: SessionSealer {
    /// Sealed into the associated data with the cookie name.
    public let purpose: String
    private let keys: [SymmetricKey]

    /// Creates a sealer.
    ///
    /// - Parameters:
    ///   - keys: 256-bit keys, newest first: the first seals, all open.
    ///   - purpose: Bound into every value with the cookie's name: values sealed for another
    ///     purpose do not open.
    /// - Throws: ``EncryptedCookieSealerError`` for no key or a key that is not 256 bits.
    public init(keys: [SymmetricKey], purpose: String = "strata-session") throws(EncryptedCookieSealerError) {
        guard !keys.isEmpty else { throw EncryptedCookieSealerError("at least one key is needed") }
        guard keys.allSatisfy({ $0.bitCount == 256 }) else {
            throw EncryptedCookieSealerError("every key must be 256 bits (SymmetricKey(size: .bits256))")
        }
        self.keys = keys
        self.purpose = purpose
    }

    /// The fields sealed: short names keep the cookie small.
    private struct Sealed: Codable {
        /// Expiry, creation and last use, in milliseconds since 1970.
        var e: Int64
        var c: Int64
        var l: Int64
        var u: String?
        var v: [String: [UInt8]]
    }

    public func seal(_ record: SessionRecord, cookieName: String, expiresAt: Timestamp) throws -> String {
        let sealed = Sealed(
            e: expiresAt.nanosecondsSince1970 / 1_000_000, c: record.createdAt.nanosecondsSince1970 / 1_000_000,
            l: record.lastSeen.nanosecondsSince1970 / 1_000_000, u: record.user, v: record.values)
        let plaintext = try JSONEncoder().encode(sealed)
        let box = try ChaChaPoly.seal(plaintext, using: self.keys[0], authenticating: self.associatedData(cookieName))
        return Base64URL.encode(box.combined)
    }

    public func open(_ value: String, cookieName: String, now: Timestamp) -> SessionRecord? {
        guard let bytes = Base64URL.decode(value), let box = try? ChaChaPoly.SealedBox(combined: bytes) else {
            return nil
        }
        let associated = self.associatedData(cookieName)
        for key in self.keys {
            guard let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: associated) else { continue }
            guard let sealed = try? JSONDecoder().decode(Sealed.self, from: plaintext),
                now.nanosecondsSince1970 / 1_000_000 < sealed.e
            else { return nil }
            return SessionRecord(
                values: sealed.v, createdAt: Timestamp(nanosecondsSince1970: sealed.c * 1_000_000),
                lastSeen: Timestamp(nanosecondsSince1970: sealed.l * 1_000_000), user: sealed.u)
        }
        return nil
    }

    private func associatedData(_ cookieName: String) -> [UInt8] {
        Array("strata-session-cookie/v1\u{0}\(self.purpose)\u{0}\(cookieName)".utf8)
    }
}

/// A sealer that cannot be made: what to change.
public struct EncryptedCookieSealerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { "EncryptedCookieSealer: \(self.message)" }
}
