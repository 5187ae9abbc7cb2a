import Strata

/// One server the proxy forwards to: an address, an optional base path, and a weight.
///
/// ```swift
/// let upstream = try Upstream("http://10.0.0.7:8080/api", weight: 2)
/// let local = try Upstream("unix:/run/app.sock")
/// ```
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    /// Where the upstream listens.
    public enum Address: Sendable, Hashable {
        /// A host name or IP address and a port. A name is resolved on every new connection.
        case host(String, port: Int)
        /// A Unix domain socket.
        case unixSocket(path: String)
    }

    /// Where the upstream listens.
    public let address: Address
    /// A path prefix joined in front of every request path (`""` for none, else no trailing `/`).
    public let basePath: String
    /// The share of requests for the weighted policies; at least 1.
    public var weight: Int
    /// The `Host` value for this upstream (`host[:port]`, the port left out when it is 80).
    public let authority: String
    /// For an upstream made by re-resolution: the host name its address came from.
    public let resolvedFrom: String?
    /// Whether connections use TLS (`https://`, with the `TLS` trait).
    public let usesTLS: Bool

    /// Parses `http://host[:port][/base]`, `https://host[:port][/base]` (with the `TLS` trait),
    /// `host:port`, or `unix:/path/to.sock`.
    ///
    /// - Throws: ``UpstreamURLError`` for anything else, including `https://` in a build without
    ///   the `TLS` trait.
    public init(_ url: String, weight: Int = 1) throws(UpstreamURLError) {
        guard weight >= 1 else { throw UpstreamURLError(url: url, reason: "the weight must be at least 1") }
        self.weight = weight
        if url.hasPrefix("unix:") {
            var path = String(url.dropFirst(5))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard path.hasPrefix("/") else {
                throw UpstreamURLError(url: url, reason: "a unix socket needs an absolute path: unix:/run/app.sock")
            }
            self.address = .unixSocket(path: path)
            self.basePath = ""
            self.authority = "localhost"
            self.resolvedFrom = nil
            self.usesTLS = false
            return
        }
        var rest = Substring(url)
        let defaultPort: Int
        if url.lowercased().hasPrefix("https://") {
            #if TLS
            rest = rest.dropFirst(8)
            defaultPort = 443
            #else
            throw UpstreamURLError(
                url: url,
                reason: "https upstreams need the TLS trait (swift build --traits TLS); use http:// or a unix socket")
            #endif
        } else {
            if url.lowercased().hasPrefix("http://") { rest = rest.dropFirst(7) }
            defaultPort = 80
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        var base = String(rest[slash...])
        while base.hasSuffix("/") { base.removeLast() }
        guard !base.contains("?"), !base.contains("#"), !base.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
            throw UpstreamURLError(url: url, reason: "the base path must be a plain path")
        }
        let host: String
        var port = defaultPort
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw UpstreamURLError(url: url, reason: "unterminated IPv6 literal")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":", let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw UpstreamURLError(url: url, reason: "invalid port")
                }
                port = value
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let value = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(value) else {
                throw UpstreamURLError(url: url, reason: "invalid port")
            }
            port = value
        } else {
            host = String(hostPort)
        }
        guard !host.isEmpty,
            host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "@") && $0 != UInt8(ascii: "/") })
        else { throw UpstreamURLError(url: url, reason: "invalid host") }
        self.address = .host(host, port: port)
        self.basePath = base
        let hostText = host.contains(":") ? "[\(host)]" : host
        self.authority = port == defaultPort ? hostText : "\(hostText):\(port)"
        self.resolvedFrom = nil
        self.usesTLS = defaultPort == 443
    }

    /// One address of a host-name upstream: connects to `address`, keeps the name's `Host`.
    init(resolving upstream: Upstream, to address: String, port: Int) {
        self.address = .host(address, port: port)
        self.basePath = upstream.basePath
        self.weight = upstream.weight
        self.authority = upstream.authority
        self.usesTLS = upstream.usesTLS
        if case .host(let name, _) = upstream.address { self.resolvedFrom = name } else { self.resolvedFrom = nil }
    }

    private var scheme: String { self.usesTLS ? "https" : "http" }

    /// The name to present in TLS SNI and to verify the certificate against: the host name
    /// (the one it was resolved from, for a resolved upstream), `nil` for an IP literal.
    var tlsServerName: String? {
        if let resolvedFrom { return resolvedFrom }
        guard case .host(let host, _) = self.address, IPAddress(host) == nil else { return nil }
        return host
    }

    /// Whether this is a host name (not an IP literal or a socket), so re-resolution applies.
    var hostName: (name: String, port: Int)? {
        guard case .host(let host, let port) = self.address, IPAddress(host) == nil else { return nil }
        return (host, port)
    }

    /// The upstream as a URL, which also names it in metrics and on the status page.
    public var description: String {
        switch self.address {
        case .host(let host, let port) where self.resolvedFrom != nil:
            "\(self.scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)\(self.basePath)"
        case .host:
            "\(self.scheme)://\(self.authority)\(self.basePath)"
        case .unixSocket(let path):
            "unix:\(path)"
        }
    }
}

/// An upstream URL that could not be used.
public struct UpstreamURLError: Error, Sendable, CustomStringConvertible {
    /// The URL as given.
    public let url: String
    /// What is wrong with it, and the form expected.
    public let reason: String
    public var description: String { "upstream \"\(self.url)\": \(self.reason)" }
}
