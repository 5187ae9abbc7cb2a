import HTTPTypes
import NIOCore
import Strata
import Testing

@Suite struct TrustedProxiesTests {
    let xff = HTTPField.Name("X-Forwarded-For")!
    let forwarded = HTTPField.Name("Forwarded")!

    func peer(_ ip: String) throws -> SocketAddress { try SocketAddress(ipAddress: ip, port: 1234) }

    @Test func untrustedPeerIsTheClientWhateverTheHeaderSays() throws {
        let proxies = try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor)
        let client = proxies.clientAddress(peer: try self.peer("203.0.113.9"), headerFields: [self.xff: "1.2.3.4"])
        #expect(client?.description == "203.0.113.9")
    }

    @Test func rightmostUntrustedAddressWins() throws {
        let proxies = try TrustedProxies(["10.0.0.0/8", "192.168.1.1"], header: .xForwardedFor)
        var fields = HTTPFields()
        fields.append(HTTPField(name: self.xff, value: "6.6.6.6, 198.51.100.7"))
        fields.append(HTTPField(name: self.xff, value: "192.168.1.1"))
        let client = proxies.clientAddress(peer: try self.peer("10.1.2.3"), headerFields: fields)
        #expect(client?.description == "198.51.100.7")
    }

    @Test func garbageStopsTheWalkAtTheProxyThatWroteIt() throws {
        let proxies = try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor)
        let client = proxies.clientAddress(
            peer: try self.peer("10.0.0.2"), headerFields: [self.xff: "1.1.1.1, nonsense, 10.0.0.5"])
        #expect(client?.description == "10.0.0.5")
    }

    @Test func allTrustedGivesTheLeftmost() throws {
        let proxies = try TrustedProxies(["10.0.0.0/8"], header: .xForwardedFor)
        let client = proxies.clientAddress(
            peer: try self.peer("10.0.0.2"), headerFields: [self.xff: "10.9.9.9, 10.0.0.5"])
        #expect(client?.description == "10.9.9.9")
    }

    @Test func forwardedHeaderWithIPv6AndPorts() throws {
        let proxies = try TrustedProxies(["::1", "2001:db8::/32"], header: .forwarded)
        let fields: HTTPFields = [self.forwarded: "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\";by=x"]
        let client = proxies.clientAddress(peer: try self.peer("::1"), headerFields: fields)
        #expect(client?.description == "192.0.2.60")
        let hidden: HTTPFields = [self.forwarded: "for=_hidden, for=unknown"]
        #expect(proxies.clientAddress(peer: try self.peer("::1"), headerFields: hidden)?.description == "::1")
    }

    @Test func trustingEveryAddressNeedsTheLoudOptOut() throws {
        #expect(throws: TrustedProxiesError.self) { try TrustedProxies(["0.0.0.0/0"], header: .xForwardedFor) }
        #expect(throws: TrustedProxiesError.self) { try TrustedProxies(["::/0"], header: .xForwardedFor) }
        _ = try TrustedProxies(["0.0.0.0/0"], header: .xForwardedFor, dangerouslyTrustEveryAddress: true)
    }

    @Test func everyMalformedEntryIsReported() {
        do {
            _ = try TrustedProxies(["10.0.0.0/33", "nope", "1.2.3.4/x"], header: .xForwardedFor)
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 3)
        }
    }

    @Test func rangesMatchByPrefix() throws {
        let range = try #require(IPAddressRange("192.168.0.0/23"))
        #expect(range.contains(try #require(IPAddress("192.168.1.200"))))
        #expect(!range.contains(try #require(IPAddress("192.168.2.1"))))
        #expect(!range.contains(try #require(IPAddress("::1"))))
        #expect(IPAddress("::ffff:10.0.0.1")?.description == "10.0.0.1")
        #expect(IPAddress("1.2.3") == nil)
    }
}
