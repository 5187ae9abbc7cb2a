#if TLS
import Foundation
import NIOCore
import NIOSSL
import StrataReverseProxy
import StrataTestSupport
import StrataTesting
import Testing

/// `https://` upstreams (the `TLS` trait): a certificate made by openssl for this test, trusted
/// by configuration, and the same upstream refused when it is not trusted.
@Suite struct TLSTests {
    /// A self-signed certificate for `localhost` and its key, as PEM files in a new folder.
    static func makeCertificate() async throws -> (certificate: String, key: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-tls-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        let output = try await ExternalProcess.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
        guard output.status == 0 else { throw ExternalProcess.Failure(description: output.stderr) }
        return (certificate, key)
    }

    static func upstream(certificate: String, key: String) async throws -> RawUpstream {
        let server = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        return try await RawUpstream.start(tls: TLSServerContext(context: try NIOSSLContext(configuration: server))) {
            pending, _ in
            pending.hasCompleteRequest
                ? .reply("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nover tls, ok") : .wait
        }
    }

    @Test func anHTTPSUpstreamIsReachedAndVerified() async throws {
        let (certificate, key) = try await Self.makeCertificate()
        let upstream = try await Self.upstream(certificate: certificate, key: key)
        defer { Task { await upstream.stop() } }
        var configuration = ReverseProxyConfiguration(upstreams: [try Upstream("https://localhost:\(upstream.port)")])
        configuration.tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
        try await withProxy(configuration) { port, _ in
            let response = try #require(try await rawRequest("GET /secure HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(response.status == 200)
            #expect(response.body == "over tls, ok")
            // The bytes the upstream decrypted: the request, with the upstream's own Host.
            #expect(upstream.allReceived.hasPrefix("GET /secure HTTP/1.1\r\nHost: localhost:\(upstream.port)\r\n"))
        }
    }

    @Test func anUntrustedCertificateIsA502() async throws {
        let (certificate, key) = try await Self.makeCertificate()
        let upstream = try await Self.upstream(certificate: certificate, key: key)
        defer { Task { await upstream.stop() } }
        var configuration = ReverseProxyConfiguration(upstreams: [try Upstream("https://localhost:\(upstream.port)")])
        configuration.retries.maxRetries = 0
        try await withProxy(configuration) { port, _ in
            let response = try #require(try await rawRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", port: port))
            #expect(response.status == 502)
            // The handshake failed before any request byte was decrypted.
            #expect(upstream.allReceived.isEmpty)
        }
        #expect(try Upstream("https://api.example").authority == "api.example")
        #expect(try Upstream("https://api.example").usesTLS)
    }
}
#endif
