public import Strata

/// How sessions are named, timed and kept; validated when the middleware is created.
///
/// The defaults are the safe ones: a `__Host-session` cookie that is `Secure`, `HttpOnly`,
/// `SameSite=Lax` and `Path=/`; a 30-minute idle timeout and a 24-hour absolute lifetime, both
/// enforced by the server; and `503` when the store cannot be reached.
///
/// ```swift
/// var configuration = SessionConfiguration()
/// configuration.idleTimeout = .seconds(15 * 60)
/// let sessions = try SessionMiddleware<BasicContext>(store: MemorySessionStore(), configuration: configuration)
/// ```
public struct SessionConfiguration: Sendable {
    /// The cookie's name. `__Host-` (the default) binds it to this exact host, HTTPS and `/`.
    public var cookieName = "__Host-session"
    /// The cookie's `Domain`, to share it with subdomains (not with a `__Host-` name).
    public var domain: String?
    /// The cookie's `Path` (`/` for a `__Host-` name).
    public var path = "/"
    /// The cookie's `SameSite`; `.none` also needs `Secure`.
    public var sameSite: Cookie.SameSite = .lax
    /// CHIPS `Partitioned`, for a session inside a third-party iframe.
    public var partitioned = false
    /// A session unused for this long ends (checked by the server on every load).
    public var idleTimeout: Duration = .seconds(30 * 60)
    /// A session ends this long after it was created, however active; regenerating the ID
    /// does not extend it.
    public var absoluteTimeout: Duration = .seconds(24 * 60 * 60)
    /// An unchanged session's idle expiry is written at most this often (a read-only request
    /// otherwise writes nothing). `nil`: a tenth of ``idleTimeout``.
    public var touchInterval: Duration?
    /// When the store fails: `false` (the default) answers `503`; `true` serves the request
    /// as anonymous and saves nothing. The store's data is untouched either way.
    public var failOpen = false
    /// Sends the cookie without `Secure`, so that it also travels over plain HTTP. Only for a
    /// development setup that is not `localhost` (browsers treat `http://localhost` as secure,
    /// so that needs no opt-out); it also needs a ``cookieName`` without the `__Host-` prefix.
    public var dangerouslyAllowInsecureCookie = false
    /// How often ``Session/update(_:_:)`` retries when other requests keep changing the value.
    public var maxUpdateAttempts = 100

    /// The defaults.
    public init() {}

    var effectiveTouchInterval: Duration { self.touchInterval ?? self.idleTimeout / 10 }

    /// The cookie carrying `value` with this configuration's attributes.
    func cookie(value: String, maxAge: Int?) throws(CookieError) -> Cookie {
        try Cookie(
            name: self.cookieName, value: value, maxAge: maxAge, domain: self.domain, path: self.path,
            secure: !self.dangerouslyAllowInsecureCookie, httpOnly: true, sameSite: self.sameSite,
            partitioned: self.partitioned)
    }

    /// Every problem at once, each with its fix.
    func validate() throws(SessionConfigurationError) {
        var problems: [String] = []
        do {
            _ = try self.cookie(value: "x", maxAge: nil)
        } catch {
            problems.append("cookie: \(error.message)")
        }
        if self.idleTimeout <= .zero { problems.append("idleTimeout must be positive") }
        if self.absoluteTimeout < self.idleTimeout {
            problems.append("absoluteTimeout must be at least idleTimeout")
        }
        if let touch = self.touchInterval, touch < .zero || touch >= self.idleTimeout {
            problems.append("touchInterval must be between zero and idleTimeout")
        }
        if self.maxUpdateAttempts < 1 { problems.append("maxUpdateAttempts must be at least 1") }
        if !problems.isEmpty { throw SessionConfigurationError(problems: problems) }
    }
}

/// A ``SessionConfiguration`` that cannot work safely, with every problem and its fix.
public struct SessionConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, one entry a problem.
    public let problems: [String]

    public var description: String { "invalid session configuration: " + self.problems.joined(separator: "; ") }
}

/// The session store could not be reached; answered `503` unless ``SessionConfiguration/failOpen``.
public struct SessionStoreUnavailableError: Error, Sendable, CustomStringConvertible {
    /// What the store threw.
    public let reason: String

    public var description: String { "the session store is unavailable: \(self.reason)" }
}

/// Why a session operation could not be done.
public struct SessionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// No ``SessionMiddleware`` with that cookie name runs in front of this handler.
        case noSessionMiddleware
        /// ``Session/update(_:_:)`` lost the race ``SessionConfiguration/maxUpdateAttempts`` times.
        case tooMuchContention
        /// The session ended (destroyed or regenerated by another request) during the operation.
        case sessionGone
        /// A session sealed into its cookie cannot do this (list or revoke sessions).
        case unsupportedByCookieStore
        /// The sealed session would make a `Set-Cookie` over 4,096 bytes.
        case cookieTooLarge
    }

    /// What went wrong.
    public let code: Code
    /// Details.
    public let message: String

    public var description: String { "SessionError.\(self.code.rawValue): \(self.message)" }
}
