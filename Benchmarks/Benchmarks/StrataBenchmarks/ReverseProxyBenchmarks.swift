import Benchmark
import HTTPTypes
import NIOCore
import Strata
@_spi(Benchmarks) import StrataReverseProxy

/// Mallocs and time of the proxy's head path per request: a browser-like request head rewritten
/// and encoded for the upstream, and an nginx-like response head parsed and cleaned.
func reverseProxyBenchmarks() {
    var request = HTTPRequest(method: .get, scheme: "http", authority: "shop.example", path: "/products/42?ref=home")
    request.headerFields = [
        .userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        .accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        .acceptLanguage: "en-GB,en;q=0.9",
        .acceptEncoding: "gzip, deflate, br, zstd",
        .cookie: "session=2f1c9a7e; theme=dark",
        .connection: "keep-alive",
        .cacheControl: "max-age=0",
        HTTPField.Name("Upgrade-Insecure-Requests")!: "1",
        HTTPField.Name("Sec-Fetch-Mode")!: "navigate",
        HTTPField.Name("Sec-Fetch-Site")!: "none",
    ]
    let peer = IPAddress("203.0.113.7")
    let response = ByteBuffer(
        string: "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 08:15:45 GMT\r\n"
            + "Content-Type: text/html; charset=utf-8\r\nContent-Length: 5120\r\nConnection: keep-alive\r\n"
            + "Vary: Accept-Encoding\r\nCache-Control: private, max-age=60\r\nETag: \"6b1519b0-1400\"\r\n"
            + "Set-Cookie: seen=1; Path=/; HttpOnly\r\n\r\n")

    Benchmark("Proxy: rewrite and encode a request head (10 fields)") { benchmark in
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1024)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            ProxyHeadPath.encodeOutbound(request, peer: peer, into: &buffer)
            blackHole(buffer.readableBytes)
        }
    }

    Benchmark("Proxy: parse and clean a response head (9 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try ProxyHeadPath.parseResponse(response))
        }
    }
}
