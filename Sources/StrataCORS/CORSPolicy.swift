public import Strata

/// A validated, normalised CORS configuration: what the middleware runs on, and what
/// ``CORSMiddleware/policy`` reads back.
public struct CORSPolicy: Sendable {
    /// The origin patterns, parsed and normalised.
    public let origins: OriginMatcher
    /// The origin predicate, if any.
    public let originPredicate: (@Sendable (String) -> Bool)?
    /// Whether credentialed requests are allowed.
    public let allowsCredentials: Bool
    /// Whether `*` is the origin policy (without credentials: `Access-Control-Allow-Origin: *`).
    public let allowsAnyOrigin: Bool
    /// Allowed methods beyond the safelisted ones, normalised.
    public let allowedMethods: Set<String>
    /// Whether `*` was given for methods.
    public let allowsAnyMethod: Bool
    /// Allowed request header names, lowercased.
    public let allowedRequestHeaders: Set<String>
    /// Whether `*` was given for request headers (never covering `Authorization`).
    public let allowsAnyRequestHeader: Bool
    /// The `Access-Control-Expose-Headers` value, or `nil` when nothing beyond the safelist is exposed.
    public let exposedHeaders: String?
    /// The `Access-Control-Max-Age` value, if any.
    public let maxAge: String?
    /// The status of a successful preflight.
    public let preflightSuccessStatus: Int
    /// Whether preflights go on to the next handler.
    public let passesPreflightToNext: Bool
    /// Whether private network access preflights are granted.
    public let allowsPrivateNetworkAccess: Bool
    /// Whether failed preflights are logged at `notice`.
    public let debug: Bool

    /// Validates and normalises `configuration`.
    ///
    /// - Throws: ``CORSConfigurationError`` listing every problem with its fix.
    public init(_ configuration: CORSConfiguration) throws(CORSConfigurationError) {
        var problems: [CORSConfigurationError.Problem] = []
        func problem(_ code: CORSConfigurationError.Problem.Code, _ message: String) {
            problems.append(.init(code: code, message: message))
        }
        let credentials = configuration.allowsCredentials

        var patterns: [OriginPattern] = []
        for text in configuration.allowedOrigins {
            do {
                patterns.append(try OriginPattern(text))
            } catch {
                if text == "null" && configuration.dangerouslyAllowNullOrigin { continue }
                problem(
                    .malformedOrigin, "origin \(error); write origins as scheme://host[:port], e.g. https://example.com"
                )
            }
        }
        if patterns.isEmpty && configuration.originPredicate == nil && !configuration.dangerouslyAllowNullOrigin {
            problem(.noOrigins, "no origin is allowed: list at least one in allowedOrigins or set originPredicate")
        }
        let anyOrigin = patterns.contains { $0.kind == .any }
        if anyOrigin && credentials {
            problem(
                .wildcardWithCredentials, "the * origin cannot be used with credentials: list the origins you trust")
        }
        if anyOrigin && configuration.allowsPrivateNetworkAccess {
            problem(
                .privateNetworkWithWildcard,
                "private network access cannot be allowed to every origin (*): list the origins you trust")
        }
        if (credentials || configuration.allowsPrivateNetworkAccess) && !configuration.dangerouslyAllowInsecureOrigins {
            for pattern in patterns where pattern.scheme == "http" && !Self.isLoopback(pattern) {
                problem(
                    .insecureOrigin,
                    "\(pattern.text) is not https: with credentials or private network access an attacker on the network could act as it; use https, or set dangerouslyAllowInsecureOrigins"
                )
            }
        }
        if credentials && !configuration.dangerouslyAllowPublicSuffixWildcards {
            for pattern in patterns {
                if case .subdomains(_, let baseHost, _) = pattern.kind, PublicSuffixes.isPublicSuffix(baseHost) {
                    problem(
                        .publicSuffixWildcard,
                        "\(pattern.text) trusts every site under the public suffix \(baseHost); name your own domain, or set dangerouslyAllowPublicSuffixWildcards"
                    )
                }
            }
        }

        var methods = Set<String>()
        var anyMethod = false
        for method in configuration.allowedMethods {
            if method == "*" {
                anyMethod = true
                if credentials {
                    problem(.wildcardWithCredentials, "the * method cannot be used with credentials: list the methods")
                }
                continue
            }
            guard !method.isEmpty, method.utf8.allSatisfy(\.isHTTPTokenByte) else {
                problem(.invalidMethod, "method \(method.debugDescription) is not a valid token")
                continue
            }
            let normalised = FetchRules.normaliseMethod(method)
            if FetchRules.forbiddenMethods.contains(normalised.uppercased()) {
                problem(.forbiddenMethod, "method \(method) is forbidden by Fetch: browsers never send it, remove it")
                continue
            }
            if normalised != method.uppercased(), FetchRules.caseSensitiveStandardMethods.contains(method.uppercased())
            {
                problem(
                    .invalidMethod,
                    "method \(method) is case-sensitive and browsers send \(method.uppercased()); write it that way")
                continue
            }
            if !FetchRules.safelistedMethods.contains(normalised) { methods.insert(normalised) }
        }

        /// Parses a list of field names: `*`, or valid names not refused by `isForbidden`,
        /// lowercased, in order, without repeats.
        func fieldNames(_ names: [String], role: String, isForbidden: (String) -> String?) -> (
            names: [String], star: Bool
        ) {
            var parsed: [String] = []
            var star = false
            for name in names {
                if name == "*" {
                    star = true
                    if credentials {
                        problem(
                            .wildcardWithCredentials, "the * \(role) cannot be used with credentials: list the headers")
                    }
                    continue
                }
                guard !name.isEmpty, name.utf8.allSatisfy(\.isHTTPTokenByte) else {
                    problem(.invalidHeaderName, "\(role) \(name.debugDescription) is not a valid field name")
                    continue
                }
                let lowered = name.lowercased()
                if let reason = isForbidden(lowered) {
                    problem(.forbiddenHeaderName, "\(role) \(name) \(reason); remove it")
                    continue
                }
                if !parsed.contains(lowered) { parsed.append(lowered) }
            }
            return (parsed, star)
        }

        let requestHeaders = fieldNames(configuration.allowedRequestHeaders, role: "request header") {
            FetchRules.isForbiddenRequestHeader($0) ? "is forbidden by Fetch: browsers never let scripts set it" : nil
        }
        let exposedHeaders = fieldNames(configuration.exposedHeaders, role: "exposed header") {
            $0 == "set-cookie" || $0 == "set-cookie2" ? "can never be read by scripts" : nil
        }
        let exposed = exposedHeaders.names.filter { !FetchRules.safelistedResponseHeaders.contains($0) }

        if let maxAge = configuration.maxAge, !(0...86_400).contains(maxAge) {
            problem(
                .maxAgeOutOfRange,
                "maxAge \(maxAge) must be in 0...86400 seconds (browsers cap it lower: Chromium at 7200)")
        }
        if !(200...299).contains(configuration.preflightSuccessStatus) {
            problem(
                .invalidPreflightStatus,
                "preflightSuccessStatus \(configuration.preflightSuccessStatus) must be a 2xx status")
        }
        guard problems.isEmpty else { throw CORSConfigurationError(problems: problems) }

        self.origins = OriginMatcher(patterns, allowsNull: configuration.dangerouslyAllowNullOrigin)
        self.originPredicate = configuration.originPredicate
        self.allowsCredentials = credentials
        self.allowsAnyOrigin = anyOrigin
        self.allowedMethods = methods
        self.allowsAnyMethod = anyMethod
        self.allowedRequestHeaders = Set(requestHeaders.names)
        self.allowsAnyRequestHeader = requestHeaders.star
        self.exposedHeaders = exposedHeaders.star ? "*" : (exposed.isEmpty ? nil : exposed.joined(separator: ", "))
        self.maxAge = configuration.maxAge.map(String.init)
        self.preflightSuccessStatus = configuration.preflightSuccessStatus
        self.passesPreflightToNext = configuration.passesPreflightToNext
        self.allowsPrivateNetworkAccess = configuration.allowsPrivateNetworkAccess
        self.debug = configuration.debug
    }

    /// Whether the `Origin` value is allowed.
    public func allowsOrigin(_ value: String) -> Bool {
        if self.origins.allows(value) { return true }
        return self.originPredicate?(value) ?? false
    }

    private static func isLoopback(_ pattern: OriginPattern) -> Bool {
        let host: String
        switch pattern.kind {
        case .exact(let origin): host = origin.host
        case .anyPort(_, let patternHost): host = patternHost
        case .subdomains(_, let baseHost, _): host = baseHost
        case .any: return false
        }
        return host == "localhost" || host.hasSuffix(".localhost") || host == "[::1]" || host.hasPrefix("127.")
    }
}
