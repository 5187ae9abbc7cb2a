import HTTPTypes
import Logging
public import Strata
import Synchronization

/// CORS exactly as the Fetch standard defines it, with a configuration that cannot be insecure
/// by accident.
///
/// - A **preflight** is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`;
///   its origin, method, headers (and private-network flag) are all checked. A failed preflight
///   is answered 403 with no CORS headers; a successful one gets the configured 2xx status.
/// - Any other request is an **actual request**: it always reaches the next handler. An allowed
///   origin gets `Access-Control-Allow-Origin` (never `*` with credentials),
///   `Access-Control-Allow-Credentials` and `Access-Control-Expose-Headers`; a disallowed one
///   gets no CORS headers (the browser then blocks the response; the server does not 403 it).
/// - Thrown errors and router 404s get the same headers: the middleware turns an error that
///   escapes the stack into its response.
/// - `Vary: Origin` is merged into every response whose headers depend on the origin, including
///   requests without `Origin` and disallowed origins; preflights also vary on the request
///   method and headers. Other middlewares' `Vary` elements are kept.
///
/// ```swift
/// let cors = try CORSMiddleware<BasicContext>(configuration: .init(allowedOrigins: ["https://app.example.com"]))
/// ```
public struct CORSMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    private let state: PolicyState

    /// Validates `configuration` and creates the middleware.
    ///
    /// - Throws: ``CORSConfigurationError`` listing every problem and its fix.
    public init(configuration: CORSConfiguration) throws(CORSConfigurationError) {
        self.state = PolicyState(try CORSPolicy(configuration))
    }

    /// The normalised policy in force.
    public var policy: CORSPolicy { self.state.current.policy }

    /// Replaces the policy for every request that starts afterwards, atomically.
    ///
    /// - Throws: ``CORSConfigurationError``; the policy in force is then unchanged.
    public func reconfigure(_ configuration: CORSConfiguration) throws(CORSConfigurationError) {
        self.state.replace(with: try CORSPolicy(configuration))
    }

    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        let reference = self.state.current
        let policy = reference.policy
        let origin = request.headerFields[.origin]
        if request.method == .options, let origin,
            let requestedMethod = request.headerFields[.accessControlRequestMethod]
        {
            return try await self.preflight(
                request, origin: origin, requestedMethod: requestedMethod, policy: policy, context: context, next: next)
        }
        var response: ServerResponse
        do {
            response = try await next(request, context)
        } catch {
            response = ServerResponse(error: error)
        }
        Self.decorateActual(&response.headerFields, origin: origin, policy: policy)
        return response
    }

    static func decorateActual(_ fields: inout HTTPFields, origin: String?, policy: CORSPolicy) {
        if policy.allowsAnyOrigin && !policy.allowsCredentials {
            // The answer is the same for every request, so it does not vary on Origin.
            fields[.accessControlAllowOrigin] = "*"
            if let exposed = policy.exposedHeaders { fields[.accessControlExposeHeaders] = exposed }
            return
        }
        fields.appendListElement("Origin", to: .vary)
        guard let origin, policy.allowsOrigin(origin) else { return }
        fields[.accessControlAllowOrigin] = origin
        if policy.allowsCredentials { fields[.accessControlAllowCredentials] = "true" }
        if let exposed = policy.exposedHeaders { fields[.accessControlExposeHeaders] = exposed }
    }

    private func preflight(
        _ request: ServerRequest,
        origin: String,
        requestedMethod: String,
        policy: CORSPolicy,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var fields = HTTPFields()
        fields.reserveCapacity(8)
        fields[.vary] = policy.allowsPrivateNetworkAccess ? preflightVaryWithPrivateNetwork : preflightVary
        switch Self.evaluatePreflight(
            request.headerFields, origin: origin, requestedMethod: requestedMethod, policy: policy)
        {
        case .failure(let reason):
            if policy.debug {
                context.logger.notice(
                    "CORS preflight failed", metadata: ["origin": "\(origin)", "reason": "\(reason)"])
            } else {
                context.logger.debug("CORS preflight failed", metadata: ["origin": "\(origin)", "reason": "\(reason)"])
            }
            if policy.passesPreflightToNext {
                var response = try await next(request, context)
                Self.mergeVary(from: fields, into: &response.headerFields)
                return response
            }
            return ServerResponse(status: .forbidden, headerFields: fields)
        case .success(let granted):
            fields[.accessControlAllowOrigin] = policy.allowsAnyOrigin && !policy.allowsCredentials ? "*" : origin
            if policy.allowsCredentials { fields[.accessControlAllowCredentials] = "true" }
            fields[.accessControlAllowMethods] = granted.method
            if let headers = granted.headers { fields[.accessControlAllowHeaders] = headers }
            if let maxAge = policy.maxAge { fields[.accessControlMaxAge] = maxAge }
            if granted.privateNetwork { fields[Self.allowPrivateNetwork] = "true" }
            if policy.passesPreflightToNext {
                var response = try await next(request, context)
                for field in fields where field.name != .vary { response.headerFields[field.name] = field.value }
                Self.mergeVary(from: fields, into: &response.headerFields)
                return response
            }
            return ServerResponse(
                status: HTTPResponse.Status(code: policy.preflightSuccessStatus), headerFields: fields)
        }
    }

    private static func mergeVary(from fields: HTTPFields, into target: inout HTTPFields) {
        for element in fields.listElements(.vary) { target.appendListElement(String(element), to: .vary) }
    }

    struct Grant {
        var method: String
        var headers: String?
        var privateNetwork: Bool
    }

    /// The preflight checks of Fetch's CORS-preflight fetch, from the server's side.
    static func evaluatePreflight(
        _ fields: HTTPFields,
        origin: String,
        requestedMethod: String,
        policy: CORSPolicy
    ) -> Result<Grant, PreflightFailure> {
        guard policy.allowsAnyOrigin || policy.allowsOrigin(origin) else {
            return .failure(.init("origin \(origin) is not allowed"))
        }
        guard !requestedMethod.isEmpty, requestedMethod.utf8.allSatisfy(\.isHTTPTokenByte) else {
            return .failure(.init("Access-Control-Request-Method is not a method"))
        }
        let method = FetchRules.normaliseMethod(requestedMethod)
        guard
            FetchRules.safelistedMethods.contains(method) || policy.allowsAnyMethod
                || policy.allowedMethods.contains(method)
        else {
            return .failure(.init("method \(requestedMethod) is not allowed"))
        }

        // Browsers send `a,b,c` in lower case: when every name is allowed and already in that
        // form, the value is echoed as it came, without building a new one.
        var granted: [String] = []
        var canonical = true
        var fieldCount = 0
        for field in fields where field.name == .accessControlRequestHeaders {
            fieldCount += 1
            for element in field.value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                var name = Substring(element)
                if name.first == " " || name.first == "\t" || name.last == " " || name.last == "\t" {
                    canonical = false
                    name = name.trimmingOWS()
                }
                if name.isEmpty {
                    canonical = false
                    continue
                }
                guard name.utf8.allSatisfy(\.isHTTPTokenByte) else {
                    return .failure(.init("Access-Control-Request-Headers has a malformed name"))
                }
                var lowered = String(name)
                if lowered.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
                    canonical = false
                    lowered = lowered.lowercased()
                }
                let allowed =
                    policy.allowedRequestHeaders.contains(lowered)
                    || (policy.allowsAnyRequestHeader && lowered != "authorization")
                guard allowed else { return .failure(.init("request header \(name) is not allowed")) }
                granted.append(lowered)
                guard granted.count <= 64 else { return .failure(.init("too many request headers")) }
            }
        }
        let grantedHeaders: String?
        if granted.isEmpty {
            grantedHeaders = nil
        } else if canonical && fieldCount == 1 {
            grantedHeaders = fields[.accessControlRequestHeaders]
        } else {
            grantedHeaders = granted.joined(separator: ",")
        }

        var privateNetwork = false
        if let flag = fields[Self.requestPrivateNetwork] {
            guard flag == "true", policy.allowsPrivateNetworkAccess else {
                return .failure(.init("private network access is not allowed"))
            }
            privateNetwork = true
        }
        return .success(
            Grant(
                method: method,
                headers: grantedHeaders,
                privateNetwork: privateNetwork
            )
        )
    }

    struct PreflightFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static var requestPrivateNetwork: HTTPField.Name { HTTPField.Name("Access-Control-Request-Private-Network")! }
    static var allowPrivateNetwork: HTTPField.Name { HTTPField.Name("Access-Control-Allow-Private-Network")! }
}

private let preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
private let preflightVaryWithPrivateNetwork = preflightVary + ", Access-Control-Request-Private-Network"

/// The policy in force, swapped atomically by `reconfigure`.
///
/// The policy sits in a class so a request takes one reference to it, not a copy of every field.
final class PolicyState: Sendable {
    final class Reference: Sendable {
        let policy: CORSPolicy
        init(_ policy: CORSPolicy) { self.policy = policy }
    }

    private let reference: Mutex<Reference>

    init(_ policy: CORSPolicy) {
        self.reference = Mutex(Reference(policy))
    }

    var current: Reference { self.reference.withLock { $0 } }

    func replace(with policy: CORSPolicy) {
        let new = Reference(policy)
        self.reference.withLock { $0 = new }
    }
}
