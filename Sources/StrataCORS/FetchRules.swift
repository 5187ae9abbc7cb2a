/// The parts of the Fetch standard the middleware checks against.
enum FetchRules {
    static let safelistedMethods: Set<String> = ["GET", "HEAD", "POST"]
    static let forbiddenMethods: Set<String> = ["CONNECT", "TRACE", "TRACK"]
    /// Standard methods Fetch does not normalise: `patch` stays `patch`.
    static let caseSensitiveStandardMethods: Set<String> = ["PATCH"]
    private static let normalisedMethods: Set<String> = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]

    /// Fetch's method normalisation: the six methods above are uppercased, others kept as sent.
    static func normaliseMethod(_ method: String) -> String {
        let upper = method.uppercased()
        return normalisedMethods.contains(upper) ? upper : method
    }

    static let safelistedResponseHeaders: Set<String> = [
        "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma",
    ]

    private static let forbiddenRequestHeaders: Set<String> = [
        "accept-charset", "accept-encoding", "access-control-request-headers", "access-control-request-method",
        "access-control-request-private-network", "connection", "content-length", "cookie", "cookie2", "date", "dnt",
        "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te", "trailer", "transfer-encoding",
        "upgrade", "via",
    ]

    static func isForbiddenRequestHeader(_ lowercasedName: String) -> Bool {
        forbiddenRequestHeaders.contains(lowercasedName) || lowercasedName.hasPrefix("proxy-")
            || lowercasedName.hasPrefix("sec-")
    }
}

/// Public suffixes a credentialed subdomain wildcard must not sit on.
///
/// Without the full Public Suffix List (not shipped, to keep the module dependency-free), this
/// catches every single-label suffix (`com`, `uk`, `dev`) and the multi-label suffixes that
/// matter most in practice; a wildcard over another suffix is not detected.
enum PublicSuffixes {
    private static let multiLabel: Set<String> = [
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "com.au", "net.au", "org.au",
        "edu.au", "gov.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp", "ac.jp", "co.kr", "or.kr", "com.br",
        "com.cn", "net.cn", "org.cn", "com.mx", "com.ar", "com.tr", "co.in", "co.za", "com.sg", "com.hk", "com.tw",
        "co.il", "com.ua", "com.pl", "co.id",
        "github.io", "gitlab.io", "herokuapp.com", "vercel.app", "netlify.app", "pages.dev", "workers.dev",
        "web.app", "firebaseapp.com", "appspot.com", "azurewebsites.net", "cloudfront.net", "blogspot.com",
        "fly.dev", "onrender.com", "glitch.me", "repl.co", "ngrok.io", "ngrok-free.app", "s3.amazonaws.com",
        "amazonaws.com", "compute.amazonaws.com", "elasticbeanstalk.com", "azurestaticapps.net",
    ]

    static func isPublicSuffix(_ host: String) -> Bool {
        !host.contains(".") || Self.multiLabel.contains(host)
    }
}
