public import CoreMetrics
public import HTTPTypes
public import NIOCore
import Strata

/// How an ``HTTPCache`` decides, validated when the cache is created.
///
/// The defaults are a shared cache (a proxy or CDN in front of an origin) that follows RFC 9111
/// strictly, keeps each entry up to 8 MiB, honours `Strata-Cache-Control` and
/// `CDN-Cache-Control` ahead of `Cache-Control`, collapses concurrent misses, and serves stale
/// content only where a directive (`stale-while-revalidate`, `stale-if-error`, request
/// `max-stale`) allows it.
///
/// ```swift
/// var configuration = HTTPCacheConfiguration()
/// configuration.staleIfError = .seconds(300)   // ride out a five-minute origin outage
/// let cache = try HTTPCache(store: MemoryCacheStore(), configuration: configuration)
/// ```
public struct HTTPCacheConfiguration: Sendable {
    /// Whose responses the cache keeps.
    public enum Mode: Sendable, Hashable {
        /// A cache shared by many users (a proxy, a CDN, the cache in front of an app): honours
        /// `s-maxage`, `proxy-revalidate`, `private` and the `Authorization` rules, and never
        /// stores `Set-Cookie`.
        case shared
        /// A cache for one user (a client's own cache): stores `private` responses and ignores
        /// `s-maxage`.
        case `private`
    }

    /// Shared (the default) or private.
    public var mode: Mode = .shared
    /// The cache's name in `Cache-Status` (RFC 9211).
    public var name = "Strata"
    /// Targeted cache-control fields (RFC 9213) this cache obeys, highest precedence first: the
    /// first one present and valid replaces `Cache-Control` for this cache. Fields other than
    /// `CDN-Cache-Control` are this cache's own and are removed before the response goes out;
    /// `CDN-Cache-Control` is passed on for the CDNs in front.
    public var targetedFields: [HTTPField.Name] = [.strataCacheControl, .cdnCacheControl]
    /// The fraction of the time since `Last-Modified` a response without explicit freshness
    /// stays fresh (RFC 9111 §4.2.2).
    public var heuristicFraction = 0.1
    /// The most heuristic freshness a response gets.
    public var maximumHeuristicLifetime: Duration = .seconds(86_400)
    /// The largest body stored; a larger response is passed through and not stored.
    public var maximumEntrySize = 8 << 20
    /// The longest past its freshness that a response is ever served (the stale ceiling),
    /// whatever `stale-while-revalidate`, `stale-if-error` or `max-stale` say; also how long a
    /// store keeps a stale entry for validation.
    public var maximumStale: Duration = .seconds(86_400)
    /// How long past its freshness a response is served when the origin fails (throws, times
    /// out, or answers 500, 502, 503 or 504) for responses without their own
    /// `stale-if-error`; zero (the default) serves stale on error only where the origin said so.
    public var staleIfError: Duration = .zero
    /// How `Accept-Encoding` is rewritten so that a compressing origin makes few variants.
    public var acceptEncoding: AcceptEncodingNormalization = .accepted()
    /// `Vary` field names that mark a response as per user: such a response is not stored in a
    /// shared cache (`Cookie`, which StrataSessions adds to any response that read a session).
    public var perUserVaryFields: [String] = ["cookie"]
    /// Whether concurrent misses for one URL make one origin request.
    public var collapsesRequests = true
    /// The most requests that wait for one URL's origin response; more go to the origin.
    public var maximumCollapsedWaiters = 1_000
    /// How long a collapsed request waits for the first one's response before going to the
    /// origin itself.
    public var collapsedWaitTimeout: Duration = .seconds(10)
    /// Whether `Cache-Tag` and `Surrogate-Key` reach the client; by default they are the
    /// cache's and are removed.
    public var exposesTagFields = false
    /// Who may purge with the `PURGE` method; `nil` (the default) leaves `PURGE` to the app.
    ///
    /// `PURGE /path` removes that URL; a `Cache-Tag` or `Surrogate-Key` field in the request
    /// removes every response with those tags instead. The predicate sees the request head and
    /// the peer's address.
    public var purgeAuthorization: (@Sendable (HTTPRequest, SocketAddress?) -> Bool)?
    /// Where the cache's metrics go; `nil` for the process's bootstrapped factory.
    public var metricsFactory: (any MetricsFactory)?

    /// The defaults.
    public init() {}

    /// Every problem at once, each with its fix.
    func validate() throws(HTTPCacheConfigurationError) {
        var problems: [String] = []
        if self.name.isEmpty || !self.name.utf8.allSatisfy({ $0.isHTTPTokenByte }) {
            problems.append("name must be a token (letters, digits, !#$%&'*+-.^_`|~) to appear in Cache-Status")
        }
        if self.targetedFields.contains(.cacheControl) {
            problems.append("targetedFields lists Cache-Control, which is not a targeted field: remove it")
        }
        if !(0...1).contains(self.heuristicFraction) {
            problems.append("heuristicFraction must be between 0 and 1 (RFC 9111 suggests 0.1)")
        }
        if self.maximumHeuristicLifetime < .zero { problems.append("maximumHeuristicLifetime must not be negative") }
        if self.maximumEntrySize <= 0 { problems.append("maximumEntrySize must be positive") }
        if self.maximumStale < .zero { problems.append("maximumStale must not be negative") }
        if self.staleIfError < .zero || self.staleIfError > self.maximumStale {
            problems.append("staleIfError must be between zero and maximumStale")
        }
        if self.maximumCollapsedWaiters < 1 { problems.append("maximumCollapsedWaiters must be at least 1") }
        if self.collapsedWaitTimeout <= .zero { problems.append("collapsedWaitTimeout must be positive") }
        if self.perUserVaryFields.contains(where: { $0 == "*" }) {
            problems.append("perUserVaryFields cannot list *: Vary: * is never matched anyway")
        }
        if !problems.isEmpty { throw HTTPCacheConfigurationError(problems: problems) }
    }
}

/// An ``HTTPCacheConfiguration`` that cannot work, with every problem and its fix.
public struct HTTPCacheConfigurationError: Error, Hashable, CustomStringConvertible {
    /// What to change, one line each.
    public var problems: [String]

    public var description: String {
        "invalid HTTP cache configuration: " + self.problems.joined(separator: "; ")
    }
}

extension HTTPField.Name {
    /// `CDN-Cache-Control` (RFC 9213): cache directives for CDNs, ahead of `Cache-Control`.
    public static let cdnCacheControl = HTTPField.Name("CDN-Cache-Control")!
    /// `Strata-Cache-Control`: cache directives for Strata's cache alone (RFC 9213 targeted field).
    public static let strataCacheControl = HTTPField.Name("Strata-Cache-Control")!
    /// `Cache-Status` (RFC 9211).
    public static let cacheStatus = HTTPField.Name("Cache-Status")!
    /// `Cache-Tag`: comma-separated tags a purge can name.
    public static let cacheTag = HTTPField.Name("Cache-Tag")!
    /// `Surrogate-Key`: space-separated tags a purge can name.
    public static let surrogateKey = HTTPField.Name("Surrogate-Key")!
}
