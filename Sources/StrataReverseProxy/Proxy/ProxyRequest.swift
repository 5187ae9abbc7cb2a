public import HTTPTypes
public import Strata

/// A request on its way to an upstream, as the ``ReverseProxy`` rewrite hook sees it.
///
/// `inbound` is what the client sent (its target normalised by the server: an absolute-form
/// target's authority is already the `Host`). `outbound` is what will be sent: hop-by-hop
/// fields are gone and the forwarding fields are set. Its path is joined behind the chosen
/// upstream's base path; its authority is replaced by the ``HostPolicy`` unless that is
/// ``HostPolicy/preserve``.
///
/// ```swift
/// proxy.rewrite = { request in
///     request.stripPrefix("/api")
///     request.outbound.headerFields[.authorization] = nil
/// }
/// ```
public struct ProxyRequest: Sendable {
    /// The request as the client sent it.
    public let inbound: HTTPRequest
    /// The client's address: the peer, or behind trusted proxies the address they name.
    public let clientAddress: IPAddress?
    /// The request that will be sent.
    public var outbound: HTTPRequest
    /// Set to send this request to one upstream, bypassing the load balancer (health still
    /// applies: an unavailable upstream answers 503).
    public var upstream: Upstream?

    init(inbound: HTTPRequest, clientAddress: IPAddress?, outbound: HTTPRequest) {
        self.inbound = inbound
        self.clientAddress = clientAddress
        self.outbound = outbound
    }

    /// Removes `prefix` from the front of the outbound path (`/api/users` → `/users`); does
    /// nothing when the path does not start with it at a segment boundary.
    public mutating func stripPrefix(_ prefix: String) {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !prefix.isEmpty, let path = self.outbound.path, path.hasPrefix(prefix) else { return }
        let rest = path.dropFirst(prefix.count)
        guard rest.isEmpty || rest.first == "/" || rest.first == "?" else { return }
        self.outbound.path = rest.isEmpty ? "/" : (rest.first == "?" ? "/" + rest : String(rest))
    }

    /// Replaces the query of the outbound target (`nil` removes it).
    public mutating func setQuery(_ query: String?) {
        let path = self.outbound.path ?? "/"
        let base =
            path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        self.outbound.path = query.map { "\(base)?\($0)" } ?? base
    }
}
