public import HTTPTypes
public import NIOCore
public import Strata

/// The proxy's per-request head work, exposed for the package benchmarks only.
@_spi(Benchmarks)
public enum ProxyHeadPath {
    /// What happens to a request head on its way upstream: hop-by-hop removal, forwarding fields
    /// (untrusted peer), and the head written in HTTP/1.1 form.
    public static func encodeOutbound(_ request: HTTPRequest, peer: IPAddress?, into buffer: inout ByteBuffer) {
        var fields = request.headerFields
        let teTrailers = HeaderRules.removeHopByHop(&fields, alsoRemove: [.contentLength, .expect])
        if teTrailers { fields[.te] = "trailers" }
        HeaderRules.setForwarding(
            &fields, peer: peer, peerTrusted: false, host: request.authority, proto: request.scheme ?? "http",
            kinds: .xForwarded, via: nil)
        HeaderRules.encodeHead(
            method: request.method, target: request.path ?? "/", authority: "127.0.0.1:9001", fields: fields,
            contentLength: nil, chunked: false, upgrade: nil, into: &buffer)
    }

    /// What happens to an upstream response head: the strict parse, which leaves the hop-by-hop
    /// fields out, then the removal of what `Connection` named.
    public static func parseResponse(_ bytes: ByteBuffer) throws -> HTTPResponse {
        var parser = ResponseParser(limits: ResponseParserLimits())
        parser.expectResponse(isHead: false, upgrades: false)
        var buffer = bytes
        var parts = CircularBuffer<UpstreamPart>(initialCapacity: 4)
        try parser.parse(&buffer, into: &parts)
        guard case .head(var response, let meta) = parts.first else {
            throw UpstreamProtocolError(kind: .malformedStatusLine)
        }
        meta.removeNamedInConnection(from: &response.headerFields)
        return response
    }
}
