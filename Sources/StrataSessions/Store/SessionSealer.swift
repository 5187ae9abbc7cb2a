public import Strata

/// Seals a whole session into its cookie value and opens it again: the session then needs no
/// server-side store.
///
/// `StrataSessionsCookie` provides an encrypting sealer (AEAD, with key rotation). A sealer
/// must bind the value to the cookie's name, keep the expiry inside what it seals, and refuse
/// (return `nil` for) anything tampered, truncated, expired or sealed under another name.
public protocol SessionSealer: Sendable {
    /// The cookie value that carries `record` under `cookieName` until `expiresAt`.
    func seal(_ record: SessionRecord, cookieName: String, expiresAt: Timestamp) throws -> String

    /// The session a cookie value carries, or `nil` when it does not open: tampered, truncated,
    /// sealed under a key no longer held or under another cookie name, or expired at `now`.
    func open(_ value: String, cookieName: String, now: Timestamp) -> SessionRecord?
}
