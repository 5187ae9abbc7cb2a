import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataCompression
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// A deterministic ~100 KiB text, the same as the example's `/big`.
func bigText(_ size: Int = 100 * 1024) -> String {
    var text = "<html><body>\n"
    var index = 0
    while text.utf8.count < size {
        text +=
            "<p class=\"row\">Row \(index): {\"id\": \(index), \"name\": \"item-\(index % 97)\", \"tags\": [\"a\", \"b\"]}</p>\n"
        index += 1
    }
    return String(text.utf8.prefix(size))!
}

func compressionRouter() -> Router<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/text/:size") { _, context in
        let size = Int(context.values.routeParameters["size"] ?? "0") ?? 0
        return ServerResponse(
            status: .ok,
            headerFields: [.contentType: "text/html; charset=utf-8", .eTag: "\"v1\"", .acceptRanges: "bytes"],
            body: .init(string: bigText(size))
        )
    }
    router.get("/stream/:size") { _, context in
        let size = Int(context.values.routeParameters["size"] ?? "0") ?? 0
        let text = ByteBuffer(string: bigText(size))
        return ServerResponse(
            status: .ok, headerFields: [.contentType: "application/json"],
            body: ResponseBody { writer in
                var rest = text
                while let chunk = rest.readSlice(length: min(rest.readableBytes, 65536)), chunk.readableBytes > 0 {
                    try await writer.write(chunk)
                }
            })
    }
    router.get("/trickle/:size") { _, context in
        // The body in 100-byte chunks, its length unknown: the compressor decides on its bytes.
        let size = Int(context.values.routeParameters["size"] ?? "0") ?? 0
        let text = ByteBuffer(string: bigText(size))
        return ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain", .eTag: "\"t1\"", .acceptRanges: "bytes"],
            body: ResponseBody { writer in
                var rest = text
                while let chunk = rest.readSlice(length: min(rest.readableBytes, 100)), chunk.readableBytes > 0 {
                    try await writer.write(chunk)
                }
            })
    }
    router.get("/flushed") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "hello "))
                try await writer.flush()
                try await writer.write(ByteBuffer(string: "world"))
            })
    }
    router.get("/png") { _, _ in
        ServerResponse(status: .ok, headerFields: [.contentType: "image/png"], body: .init(string: bigText(5000)))
    }
    router.get("/no-transform") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain", .cacheControl: "no-transform"],
            body: .init(string: bigText(5000)))
    }
    router.get("/encoded") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain", .contentEncoding: "br"],
            body: .init(string: bigText(5000)))
    }
    router.get("/skip") { _, context in
        context.values[SkipCompression.self] = true
        return ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain"], body: .init(string: bigText(5000)))
    }
    router.get("/empty") { _, _ in ServerResponse(status: .noContent, headerFields: [.contentType: "text/plain"]) }
    return router
}

func compressingStack(_ configure: (inout CompressionConfiguration) -> Void = { _ in }) throws -> some HTTPResponder<
    BasicContext
> {
    var configuration = CompressionConfiguration()
    configure(&configuration)
    let compression = try ResponseCompressionMiddleware<BasicContext>(configuration: configuration)
    return MiddlewareStack(BasicContext.self) {
        AppendVary<BasicContext>("Origin")
        compression
    }.wrapping(compressionRouter())
}

/// Decodes `data` with Python's own gzip/zlib modules and returns the decoded bytes' length and
/// whether they equal the expected text.
func pythonDecodes(_ data: Data, coding: String, expected: String) async throws -> Bool {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-gz-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let compressed = directory.appendingPathComponent("body")
    let original = directory.appendingPathComponent("original")
    try data.write(to: compressed)
    try Data(expected.utf8).write(to: original)
    let script =
        "import gzip, zlib, sys\nraw = open(sys.argv[1], 'rb').read()\nout = gzip.decompress(raw) if sys.argv[3] == 'gzip' else zlib.decompress(raw)\nprint('same' if out == open(sys.argv[2], 'rb').read() else 'different %d' % len(out))"
    let output = try await ExternalProcess.run(
        try ExternalProcess.python(), ["-c", script, compressed.path, original.path, coding])
    return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "same"
}

/// The whole-body caps the buffered tests run with: 0 sends every body through zlib (the only
/// path without the `Libdeflate` trait), the default takes libdeflate when the trait is on.
let wholeBodyCaps = [0, CompressionConfiguration().libdeflateMaximumSize]

@Suite struct ResponseCompressionTests {
    @Test(arguments: wholeBodyCaps)
    func bufferedBodiesAreCompressedWithAnExactLength(_ cap: Int) async throws {
        let client = TestClient(responder: try compressingStack { $0.libdeflateMaximumSize = cap })
        let response = try await client.execute(.get, "/text/102400", headerFields: [.acceptEncoding: "gzip, deflate"])
        #expect(response.headerFields[.contentEncoding] == "gzip")
        #expect(response.contentLength == response.body.readableBytes)
        #expect(response.body.readableBytes < 20_000)
        #expect(response.headerFields[.eTag] == "W/\"v1\"")
        #expect(response.headerFields[.acceptRanges] == nil)
        #expect(response.headerFields[.vary] == "Accept-Encoding, Origin")
        #expect(
            try await pythonDecodes(Data(response.body.readableBytesView), coding: "gzip", expected: bigText(102_400)))
    }

    @Test(arguments: ["gzip", "deflate"])
    func streamedBodiesAreCompressedAsTheyGo(_ coding: String) async throws {
        let client = TestClient(responder: try compressingStack())
        let response = try await client.execute(.get, "/stream/300000", headerFields: [.acceptEncoding: coding])
        #expect(response.headerFields[.contentEncoding] == coding)
        #expect(response.contentLength == nil)
        #expect(
            try await pythonDecodes(Data(response.body.readableBytesView), coding: coding, expected: bigText(300_000)))
    }

    /// A body only the host framework can send (a Vapor stream through StrataVapor) passes
    /// through untouched: no Content-Encoding, the host's value handed back.
    @Test func opaqueBodiesPassThroughUncompressed() async throws {
        let middleware = try ResponseCompressionMiddleware<BasicContext>()
        let request = ServerRequest(
            head: HTTPRequest(
                method: .get, scheme: "http", authority: "example", path: "/", headerFields: [.acceptEncoding: "gzip"]),
            body: .empty)
        let response = try await middleware.handle(
            request, context: BasicContext(source: .init(logger: .init(label: "t")))
        ) {
            _, _ in
            ServerResponse(
                status: .ok, headerFields: [.contentType: "text/html"],
                body: ResponseBody(opaque: "host body", contentLength: nil))
        }
        #expect(response.headerFields[.contentEncoding] == nil)
        #expect(response.body.opaqueValue as? String == "host body")
    }

    @Test(arguments: [
        ("/png", "gzip", "image types are compressed already"),
        ("/no-transform", "gzip", "no-transform"),
        ("/encoded", "gzip", "already encoded"),
        ("/skip", "gzip", "handler opted out"),
        ("/text/1023", "gzip", "below the minimum"),
        ("/text/5000", "identity", "client wants identity"),
        ("/text/5000", "compress", "no shared coding"),
    ])
    func responsesLeftAsTheyAre(_ path: String, _ accept: String, _ label: String) async throws {
        let client = TestClient(responder: try compressingStack())
        let response = try await client.execute(.get, path, headerFields: [.acceptEncoding: accept])
        #expect(response.headerFields[.contentEncoding] != "gzip", "\(label)")
        #expect(response.headerFields[.contentEncoding] != "deflate", "\(label)")
    }

    @Test(arguments: wholeBodyCaps)
    func exactlyTheThresholdIsCompressed(_ cap: Int) async throws {
        let client = TestClient(responder: try compressingStack { $0.libdeflateMaximumSize = cap })
        let response = try await client.execute(.get, "/text/1024", headerFields: [.acceptEncoding: "gzip"])
        #expect(response.headerFields[.contentEncoding] == "gzip")
        #expect(try await pythonDecodes(Data(response.body.readableBytesView), coding: "gzip", expected: bigText(1024)))
    }

    @Test(arguments: [0, 1])
    func tinyBodiesRoundTripWhenTheMinimumAllows(_ size: Int) async throws {
        let client = TestClient(responder: try compressingStack { $0.minimumSize = 0 })
        let response = try await client.execute(.get, "/stream/\(size)", headerFields: [.acceptEncoding: "gzip"])
        #expect(response.headerFields[.contentEncoding] == "gzip")
        #expect(try await pythonDecodes(Data(response.body.readableBytesView), coding: "gzip", expected: bigText(size)))
    }

    @Test func shortStreamsOfUnknownLengthAreTakenBackToIdentity() async throws {
        let client = TestClient(responder: try compressingStack())
        let short = try await client.execute(.get, "/trickle/900", headerFields: [.acceptEncoding: "gzip"])
        #expect(short.headerFields[.contentEncoding] == nil)
        #expect(short.headerFields[.eTag] == "\"t1\"", "the strong validator is restored")
        #expect(short.headerFields[.acceptRanges] == "bytes")
        #expect(short.headerFields.listElements(.vary).contains("Accept-Encoding"))
        #expect(String(buffer: short.body) == bigText(900))
        let long = try await client.execute(.get, "/trickle/5000", headerFields: [.acceptEncoding: "gzip"])
        #expect(long.headerFields[.contentEncoding] == "gzip")
        #expect(long.headerFields[.eTag] == "W/\"t1\"")
        #expect(try await pythonDecodes(Data(long.body.readableBytesView), coding: "gzip", expected: bigText(5000)))
        let flushed = try await client.execute(.get, "/flushed", headerFields: [.acceptEncoding: "gzip"])
        #expect(flushed.headerFields[.contentEncoding] == "gzip", "a flush means the stream matters: compress it")
        #expect(try await pythonDecodes(Data(flushed.body.readableBytesView), coding: "gzip", expected: "hello world"))
    }

    @Test func theServerSendsTheTakenBackHead() async throws {
        try await withLiveServer(responder: try compressingStack()) { port in
            let short = try await RawHTTPClient.exchange(
                "GET /trickle/900 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n", port: port
            )
            let response = try #require(parseResponses(short).first)
            #expect(response.status == 200)
            #expect(response.header("content-encoding") == nil)
            #expect(response.header("etag") == "\"t1\"")
            #expect(response.body == bigText(900))
            let long = try await ExternalProcess.run(
                try ExternalProcess.curl(),
                [
                    "-sS", "-D", "-", "--compressed", "-H", "Accept-Encoding: gzip",
                    "http://127.0.0.1:\(port)/trickle/5000",
                ])
            let (head, _, body) = try #require(long.stdout.partitioned(at: "\r\n\r\n"))
            #expect(head.lowercased().contains("content-encoding: gzip"), "\(head)")
            #expect(body == bigText(5000))
        }
    }

    @Test(arguments: ["gzip", "deflate"], wholeBodyCaps)
    func lengthPaddingVariesTheLengthAndDecodersSkipIt(_ coding: String, _ cap: Int) async throws {
        let plain = TestClient(responder: try compressingStack { $0.libdeflateMaximumSize = cap })
        let padded = TestClient(
            responder: try compressingStack {
                $0.lengthPadding = 40
                $0.libdeflateMaximumSize = cap
            })
        for path in ["/text/5000", "/trickle/5000"] {
            let base = try await plain.execute(.get, path, headerFields: [.acceptEncoding: coding]).body.readableBytes
            var lengths: Set<Int> = []
            for _ in 0..<24 {
                let response = try await padded.execute(.get, path, headerFields: [.acceptEncoding: coding])
                #expect(response.headerFields[.contentEncoding] == coding)
                let body = Data(response.body.readableBytesView)
                lengths.insert(body.count)
                #expect(try await pythonDecodes(body, coding: coding, expected: bigText(5000)), "\(path)")
            }
            // A flush before the padding may cost a few bytes; the padding adds 10...50.
            #expect(lengths.allSatisfy { (base + 10)...(base + 60) ~= $0 }, "\(path): \(base) \(lengths.sorted())")
            #expect(lengths.count > 3, "\(path): the length varies: \(lengths.sorted())")
        }
        #expect(throws: CompressionConfigurationError.self) {
            try ResponseCompressionMiddleware<BasicContext>(
                configuration: {
                    var configuration = CompressionConfiguration()
                    configuration.lengthPadding = -1
                    return configuration
                }())
        }
    }

    /// br and zstd, built with their traits, decoded by curl's own brotli and zstd decoders.
    @Test(arguments: ContentCoding.available.filter { $0 == .brotli || $0 == .zstd })
    func optInCodingsDecodeWithCurl(_ coding: ContentCoding) async throws {
        let stack = try compressingStack {
            $0.codings = [coding]
            $0.lengthPadding = 30
        }
        try await withLiveServer(responder: stack) { port in
            for path in ["/text/102400", "/stream/300000", "/trickle/5000", "/text/1024"] {
                let output = try await ExternalProcess.run(
                    try ExternalProcess.curl(),
                    [
                        "-sS", "-D", "-", "--compressed", "-H", "Accept-Encoding: \(coding.rawValue)",
                        "http://127.0.0.1:\(port)\(path)",
                    ])
                let (head, _, body) = try #require(output.stdout.partitioned(at: "\r\n\r\n"), "\(output.stderr)")
                #expect(head.lowercased().contains("content-encoding: \(coding.rawValue)"), "\(path): \(head)")
                let size = Int(path.split(separator: "/").last ?? "") ?? 0
                let same = body == bigText(size)  // outside #expect: no diff of large strings on failure
                #expect(same, "\(path): \(body.utf8.count) bytes decoded")
            }
        }
    }

    @Test func availableCodingsFollowTheTraits() throws {
        var expected: [ContentCoding] = []
        #if Zstd
        expected.append(.zstd)
        #endif
        #if Brotli
        expected.append(.brotli)
        #endif
        #expect(ContentCoding.available == expected + [.gzip, .deflate])
        #expect(CompressionConfiguration().codings == ContentCoding.available)
        let choice = ContentCoding.negotiate(
            [.acceptEncoding: "gzip, deflate, br, zstd"], preference: CompressionConfiguration().codings)
        #expect(choice == .coding(ContentCoding.available[0]))
        var configuration = CompressionConfiguration()
        configuration.brotliQuality = 12
        configuration.zstdLevel = 0
        #expect {
            try ResponseCompressionMiddleware<BasicContext>(configuration: configuration)
        } throws: { error in
            let problems = (error as? CompressionConfigurationError)?.problems ?? []
            return problems.count == 2
        }
    }

    @Test func headAndRangeAreNotCompressedButVary() async throws {
        let client = TestClient(responder: try compressingStack())
        let head = try await client.execute(.head, "/text/5000", headerFields: [.acceptEncoding: "gzip"])
        #expect(head.headerFields[.contentEncoding] == nil)
        #expect(head.headerFields.listElements(.vary).contains("Accept-Encoding"))
        let range = try await client.execute(
            .get, "/text/5000", headerFields: [.acceptEncoding: "gzip", .range: "bytes=0-10"])
        #expect(range.headerFields[.contentEncoding] == nil)
    }

    @Test func notAcceptableIsAnOption() async throws {
        let off = TestClient(responder: try compressingStack())
        #expect(
            try await off.execute(.get, "/text/5000", headerFields: [.acceptEncoding: "identity;q=0, compress"]).status
                == .ok
        )
        let on = TestClient(responder: try compressingStack { $0.respondsNotAcceptable = true })
        #expect(
            try await on.execute(.get, "/text/5000", headerFields: [.acceptEncoding: "identity;q=0, compress"]).status
                == .notAcceptable)
    }

    @Test func curlDecodesTenMebibytesStreamedOverASocket() async throws {
        try await withLiveServer(responder: try compressingStack()) { port in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-curl-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: file) }
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(),
                [
                    "-sS", "--compressed", "-o", file.path, "-w", "%{http_code} %{size_download}",
                    "http://127.0.0.1:\(port)/stream/10485760",
                ]
            )
            let parts = output.stdout.split(separator: " ")
            #expect(parts.first == "200", "\(output.stderr)")
            #expect(Int(parts.last ?? "0") ?? 0 < 10_485_760 / 4, "the transfer was compressed")
            let decoded = try Data(contentsOf: file)
            let same = decoded == Data(bigText(10_485_760).utf8)  // outside #expect: no diff of 10 MiB on failure
            #expect(same, "\(decoded.count) bytes decoded")
        }
    }
}

extension String {
    /// The text before and after the first `separator`.
    func partitioned(at separator: String) -> (String, String, String)? {
        guard let range = self.range(of: separator) else { return nil }
        return (String(self[..<range.lowerBound]), separator, String(self[range.upperBound...]))
    }
}
