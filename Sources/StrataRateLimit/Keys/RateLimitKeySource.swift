public import HTTPTypes
import NIOCore
public import Strata

/// How a policy finds the key it counts a request under.
///
/// A source that finds no key (no such header, no signed-in user) means **this policy does not
/// limit this request**: the other policies still do. To limit anonymous callers too, add a
/// second policy keyed by ``clientAddress(ipv6Prefix:)``.
public struct RateLimitKeySource<Context: MiddlewareContext>: Sendable {
    enum Kind: Sendable {
        case clientAddress(ipv6Prefix: Int)
        case header(HTTPField.Name)
        case route
        case global
        case custom(@Sendable (ServerRequest, Context) -> RateLimitKey?)
    }

    let kind: Kind

    /// The client's address: the socket peer, or behind the middleware's `TrustedProxies` the
    /// rightmost address they did not add. A raw forwarding header is never read otherwise.
    ///
    /// - Parameter ipv6Prefix: IPv6 clients are counted per block of this length (default
    ///   `/56`, a typical residential allocation), so rotating addresses inside it does not
    ///   buy a new quota. Use 64 for per-subnet, 128 for per-address.
    public static func clientAddress(ipv6Prefix: Int = 56) -> Self {
        Self(kind: .clientAddress(ipv6Prefix: ipv6Prefix))
    }

    /// The value of a request header, such as an API key. Requests without it are not limited
    /// by this policy. Forwarding headers are refused at init: use ``clientAddress(ipv6Prefix:)``.
    public static func header(_ name: HTTPField.Name) -> Self {
        Self(kind: .header(name))
    }

    /// A value some earlier middleware put in the request's values, such as the authenticated
    /// user. Requests without it are not limited by this policy.
    public static func value<Key: RequestValueKey>(
        _ key: Key.Type, _ text: @escaping @Sendable (Key.Value) -> String?
    ) -> Self where Context: ServerContext {
        Self(kind: .custom({ _, context in context.values[key].flatMap(text).map(RateLimitKey.init) }))
    }

    /// The method and path (without the query): one quota per endpoint, shared by every client.
    public static var route: Self { Self(kind: .route) }

    /// One key for every request: a quota for the whole service.
    public static var global: Self { Self(kind: .global) }

    /// Any function of the request; `nil` means this policy does not limit the request.
    public static func custom(_ key: @escaping @Sendable (ServerRequest, Context) -> RateLimitKey?) -> Self {
        Self(kind: .custom(key))
    }
}

/// Header names only a proxy should set: keying by them lets any client pick its own quota.
/// (A file-level constant: a generic type cannot have a static stored property.)
private let forwardingHeaderNames: Set<String> = [
    "x-forwarded-for", "forwarded", "x-real-ip", "true-client-ip", "cf-connecting-ip", "fly-client-ip",
    "x-client-ip", "x-cluster-client-ip", "fastly-client-ip",
]

extension RateLimitKeySource {

    /// The header this source reads, when it is a forwarding header.
    var forwardingHeader: HTTPField.Name? {
        guard case .header(let name) = self.kind, forwardingHeaderNames.contains(name.canonicalName) else {
            return nil
        }
        return name
    }

    /// The source without its generic part: the middleware's hot path works on these, so it
    /// runs specialised code whatever the context type.
    func resolver(custom index: Int) -> KeyResolver {
        switch self.kind {
        case .clientAddress(let prefix): .clientAddress(ipv6Prefix: prefix)
        case .header(let name): .header(name)
        case .route: .route
        case .global: .global
        case .custom: .custom(index)
        }
    }

    var customFunction: (@Sendable (ServerRequest, Context) -> RateLimitKey?)? {
        if case .custom(let function) = self.kind { return function }
        return nil
    }
}

/// A key source with the custom function replaced by its index.
enum KeyResolver: Sendable {
    case clientAddress(ipv6Prefix: Int)
    case header(HTTPField.Name)
    case route
    case global
    case custom(Int)

    /// The key, or `nil` for a custom source (the caller asks the function) or a missing one.
    func key(for request: ServerRequest, peer: SocketAddress?, proxies: TrustedProxies?) -> RateLimitKey? {
        switch self {
        case .clientAddress(let prefix):
            guard let proxies else { return RateLimitKey(peer: peer, ipv6Prefix: prefix) }
            guard let address = proxies.clientAddress(peer: peer, headerFields: request.head.headerFields) else {
                return nil
            }
            return RateLimitKey(address: address, ipv6Prefix: prefix)
        case .header(let name):
            return request.head.headerFields[name].map(RateLimitKey.init)
        case .route:
            let path = request.head.path ?? "/"
            let end = path.firstIndex(of: "?") ?? path.endIndex
            return RateLimitKey("\(request.head.method.rawValue) \(path[..<end])")
        case .global:
            return RateLimitKey("*")
        case .custom:
            return nil
        }
    }
}
