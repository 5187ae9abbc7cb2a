/// What a ``CORSMiddleware`` allows. Validated when the middleware is made.
///
/// ```swift
/// var configuration = CORSConfiguration(allowedOrigins: ["https://app.example.com", "https://*.example.com"])
/// configuration.allowsCredentials = true
/// configuration.allowedMethods = ["PUT", "DELETE"]
/// configuration.allowedRequestHeaders = ["Content-Type", "X-Requested-With"]
/// configuration.exposedHeaders = ["X-Request-Count"]
/// configuration.maxAge = 600
/// let cors = try CORSMiddleware<BasicContext>(configuration: configuration)
/// ```
public struct CORSConfiguration: Sendable {
    /// Origin patterns: exact origins (`https://example.com`), subdomains (`https://*.example.com`),
    /// any port (`http://localhost:*`), or `*`. See `OriginPattern` in Strata.
    public var allowedOrigins: [String]
    /// Decides origins the patterns do not allow. It receives only the `Origin` value, so the
    /// answer depends on nothing else in the request and responses stay cacheable.
    public var originPredicate: (@Sendable (String) -> Bool)?
    /// Whether credentialed requests (cookies, HTTP authentication) are allowed:
    /// `Access-Control-Allow-Credentials: true`. Forbids `*` anywhere in the configuration.
    public var allowsCredentials: Bool
    /// Methods a preflight may ask for, beyond the CORS-safelisted `GET`, `HEAD` and `POST`.
    /// `*` allows any method (not with credentials). Methods are case-sensitive, as in Fetch,
    /// except the six it normalises (`DELETE GET HEAD OPTIONS POST PUT`).
    public var allowedMethods: [String]
    /// Request header names a preflight may ask for (case-insensitive). `*` allows any name but
    /// `Authorization`, which must be listed (not with credentials).
    public var allowedRequestHeaders: [String]
    /// Response header names scripts may read, beyond the CORS-safelisted ones. `*` exposes all
    /// (not with credentials).
    public var exposedHeaders: [String]
    /// Seconds a browser may cache a preflight (`Access-Control-Max-Age`, 0...86400); `nil`
    /// sends nothing (browsers then cache for 5 s); `0` asks them not to cache.
    public var maxAge: Int?
    /// The status of a successful preflight, 200...299. Default 204.
    public var preflightSuccessStatus: Int
    /// Whether a preflight is passed on to the next handler (with its CORS headers added to the
    /// handler's response) instead of being answered by the middleware.
    public var passesPreflightToNext: Bool
    /// Whether Private Network Access preflights are answered with
    /// `Access-Control-Allow-Private-Network: true`.
    public var allowsPrivateNetworkAccess: Bool
    /// Logs, at `notice`, why each preflight failed.
    public var debug: Bool
    /// Allows `http://` origins (other than loopback) with credentials or private network
    /// access, which lets any network attacker on the path act as that origin.
    public var dangerouslyAllowInsecureOrigins: Bool
    /// Allows subdomain patterns over a public suffix (`https://*.com`, `https://*.github.io`)
    /// with credentials: every site under that suffix is then trusted.
    public var dangerouslyAllowPublicSuffixWildcards: Bool
    /// Allows the `null` origin (sandboxed iframes, `file:` documents), which any site can send.
    public var dangerouslyAllowNullOrigin: Bool

    /// Creates a configuration allowing `allowedOrigins`, with nothing else allowed.
    public init(allowedOrigins: [String] = []) {
        self.allowedOrigins = allowedOrigins
        self.originPredicate = nil
        self.allowsCredentials = false
        self.allowedMethods = []
        self.allowedRequestHeaders = []
        self.exposedHeaders = []
        self.maxAge = nil
        self.preflightSuccessStatus = 204
        self.passesPreflightToNext = false
        self.allowsPrivateNetworkAccess = false
        self.debug = false
        self.dangerouslyAllowInsecureOrigins = false
        self.dangerouslyAllowPublicSuffixWildcards = false
        self.dangerouslyAllowNullOrigin = false
    }
}

/// Why a ``CORSConfiguration`` was refused: every problem, each with what to change.
public struct CORSConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One problem in the configuration.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// The kind of problem.
        public enum Code: String, Sendable, Hashable {
            case noOrigins, malformedOrigin, wildcardWithCredentials, insecureOrigin, publicSuffixWildcard
            case invalidMethod, forbiddenMethod, invalidHeaderName, forbiddenHeaderName
            case maxAgeOutOfRange, invalidPreflightStatus, privateNetworkWithWildcard
        }

        /// The kind of problem.
        public let code: Code
        /// What is wrong and how to fix it.
        public let message: String
        public var description: String { "\(self.code.rawValue): \(self.message)" }
    }

    /// Every problem found.
    public let problems: [Problem]

    public var description: String {
        "invalid CORS configuration:\n" + self.problems.map { "- \($0.message)" }.joined(separator: "\n")
    }
}
