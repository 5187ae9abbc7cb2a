public import HTTPTypes
public import NIOCore

/// Finds the client's address behind reverse proxies you trust, and only those.
///
/// A forwarding header can be written by anyone, so it is read only when the connection comes
/// from a trusted proxy, and then from the right: each trusted proxy appends the address it saw.
/// The rightmost address that is not a trusted proxy is the client. An entry that is not an IP
/// address stops the walk at the proxy that wrote it.
///
/// ```swift
/// let proxies = try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor)
/// let client = proxies.clientAddress(peer: context.remoteAddress, headerFields: request.headerFields)
/// ```
public struct TrustedProxies: Sendable {
    /// Which forwarding header the proxies write.
    public enum Header: Sendable, Hashable {
        /// RFC 7239 `Forwarded: for=...`.
        case forwarded
        /// `X-Forwarded-For: client, proxy1, ...`.
        case xForwardedFor
    }

    /// The trusted proxy blocks, normalised.
    public let ranges: [IPAddressRange]
    /// The header read.
    public let header: Header

    /// Trusts the proxies in `cidrs`.
    ///
    /// - Parameters:
    ///   - cidrs: Addresses or CIDR blocks of your proxies.
    ///   - header: The forwarding header they write.
    ///   - dangerouslyTrustEveryAddress: Allows a block covering every address (`0.0.0.0/0`,
    ///     `::/0`), which lets any client choose its own address. Only for a server that no client
    ///     can reach except through the proxy.
    /// - Throws: ``TrustedProxiesError`` listing every malformed or too-broad entry.
    public init(_ cidrs: [String], header: Header, dangerouslyTrustEveryAddress: Bool = false)
        throws(TrustedProxiesError)
    {
        var problems: [String] = []
        var ranges: [IPAddressRange] = []
        for text in cidrs {
            guard let range = IPAddressRange(text) else {
                problems.append("\(text.debugDescription) is not an IP address or CIDR block")
                continue
            }
            if range.prefixLength == 0 && !dangerouslyTrustEveryAddress {
                problems.append(
                    "\(text) trusts every address, so any client can forge its address; list your proxies' blocks, or pass dangerouslyTrustEveryAddress: true"
                )
            }
            ranges.append(range)
        }
        guard problems.isEmpty else { throw TrustedProxiesError(problems: problems) }
        self.ranges = ranges
        self.header = header
    }

    /// Whether `address` is one of the trusted proxies.
    public func isTrusted(_ address: IPAddress) -> Bool {
        self.ranges.contains { $0.contains(address) }
    }

    /// The client's address: the peer itself unless the peer is a trusted proxy, else the
    /// rightmost untrusted address in the forwarding header.
    ///
    /// - Returns: `nil` only when the peer has no IP address (a Unix socket).
    public func clientAddress(peer: SocketAddress?, headerFields: HTTPFields) -> IPAddress? {
        guard let peerText = peer?.ipAddress, var current = IPAddress(peerText) else { return nil }
        guard self.isTrusted(current) else { return current }
        for hop in self.hops(headerFields).reversed() {
            guard let address = hop else { return current }
            current = address
            if !self.isTrusted(address) { return address }
        }
        return current
    }

    /// The forwarding header's addresses, left to right; `nil` for an entry that is not one.
    func hops(_ fields: HTTPFields) -> [IPAddress?] {
        switch self.header {
        case .xForwardedFor:
            guard let name = HTTPField.Name("X-Forwarded-For") else { return [] }
            return fields.listElements(name).map { IPAddress($0) }
        case .forwarded:
            guard let name = HTTPField.Name("Forwarded") else { return [] }
            return fields.listElements(name).map { element in
                for pair in element.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0].trimmingOWS().equalsIgnoringASCIICase("for") else { continue }
                    return Self.forwardedNode(parts[1].trimmingOWS())
                }
                return nil
            }
        }
    }

    /// Parses a `Forwarded` node: `192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]:4711"`.
    static func forwardedNode(_ raw: Substring) -> IPAddress? {
        var node = raw
        if node.count >= 2, node.first == "\"", node.last == "\"" { node = node.dropFirst().dropLast() }
        if node.first == "[" {
            guard let close = node.firstIndex(of: "]") else { return nil }
            return IPAddress(node[node.index(after: node.startIndex)..<close])
        }
        if let colon = node.firstIndex(of: ":") { node = node[..<colon] }
        return IPAddress(node)
    }
}

/// A ``TrustedProxies`` configuration that was refused.
public struct TrustedProxiesError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, each with its fix.
    public let problems: [String]
    public var description: String { "TrustedProxies: " + self.problems.joined(separator: "; ") }
}
