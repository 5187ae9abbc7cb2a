import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataCompression
import StrataServer
import StrataTestSupport
import StrataTesting
import Synchronization
import Testing

/// Records how many inflated bytes the handler saw, so a test can check memory stayed bounded.
final class InflatedCounter: Sendable {
    let bytes = Atomic<Int>(0)
}

func uploadStack(counter: InflatedCounter, maxInflated: Int = 8 * 1024 * 1024, ratio: Int = 100) throws
    -> some HTTPResponder<BasicContext>
{
    let router = Router<BasicContext>()
    router.post("/upload") { request, _ in
        var total = 0
        var digest: UInt64 = 14_695_981_039_346_656_037
        for try await chunk in request.body {
            total += chunk.readableBytes
            counter.bytes.store(total, ordering: .relaxed)
            for byte in chunk.readableBytesView { digest = (digest ^ UInt64(byte)) &* 1_099_511_628_211 }
        }
        return ServerResponse(status: .ok, body: .init(string: "\(total) \(String(digest, radix: 16))"))
    }
    let decompression = try RequestDecompressionMiddleware<BasicContext>(maxInflatedSize: maxInflated, maxRatio: ratio)
    return MiddlewareStack(BasicContext.self) { decompression }.wrapping(router)
}

/// Makes compressed request bodies with Python's zlib, independently of the code under test.
func pythonCompressedFile(_ kind: String, size: Int, directory: URL) async throws -> (file: URL, expected: String) {
    let file = directory.appendingPathComponent("\(kind)-\(size)")
    let script = """
        import sys, zlib
        kind, size, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        wbits = 31 if kind.startswith('gzip') else 15
        compressor = zlib.compressobj(1, zlib.DEFLATED, wbits)
        digest, total = 14695981039346656037, 0
        with open(path, 'wb') as out:
            block = bytes(1 << 20) if kind.endswith('zeros') else bytes((i * 7 + i // 251) % 251 for i in range(1 << 20))
            while total < size:
                part = block[: min(len(block), size - total)]
                if not kind.endswith('zeros'):
                    for byte in part: digest = ((digest ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
                out.write(compressor.compress(part))
                total += len(part)
            out.write(compressor.flush())
        print(total, format(digest, 'x'))
        """
    let output = try await ExternalProcess.run(
        try ExternalProcess.python(), ["-c", script, kind, "\(size)", file.path], timeout: .seconds(120))
    return (file, output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
}

func post(_ file: URL, port: Int, encoding: String) async throws -> (status: String, body: String) {
    let output = try await ExternalProcess.run(
        try ExternalProcess.curl(),
        [
            "-sS", "-X", "POST", "-H", "Content-Encoding: \(encoding)", "-H", "Expect:", "--data-binary",
            "@" + file.path,
            "-w", "\n%{http_code}", "http://127.0.0.1:\(port)/upload",
        ]
    )
    let lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
}

@Suite(.serialized) struct RequestDecompressionTests {
    let directory: URL

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strata-inflate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    @Test(arguments: ["gzip", "deflate"])
    func compressedUploadsAreInflatedAsTheyStream(_ coding: String) async throws {
        defer { try? FileManager.default.removeItem(at: self.directory) }
        let (file, expected) = try await pythonCompressedFile(
            coding, size: 3 * 1024 * 1024 + 5, directory: self.directory)
        try await withLiveServer(responder: try uploadStack(counter: InflatedCounter())) { port in
            let (status, body) = try await post(file, port: port, encoding: coding)
            #expect(status == "200")
            #expect(body == expected)
        }
    }

    @Test func aGibibyteBombIsRefusedWithBoundedMemory() async throws {
        defer { try? FileManager.default.removeItem(at: self.directory) }
        let (bomb, _) = try await pythonCompressedFile("gzip-zeros", size: 1 << 30, directory: self.directory)
        let counter = InflatedCounter()
        try await withLiveServer(responder: try uploadStack(counter: counter, maxInflated: 8 << 20, ratio: 100_000)) {
            port in
            let (status, body) = try await post(bomb, port: port, encoding: "gzip")
            #expect(status == "413")
            #expect(body.contains("more than 8388608 bytes"))
        }
        // The handler never held more than the limit plus one 64 KiB chunk.
        #expect(counter.bytes.load(ordering: .relaxed) <= (8 << 20) + 64 * 1024)
    }

    @Test func theRatioLimitStopsABombBelowTheSizeLimit() async throws {
        defer { try? FileManager.default.removeItem(at: self.directory) }
        let (bomb, _) = try await pythonCompressedFile("gzip-zeros", size: 50 << 20, directory: self.directory)
        let counter = InflatedCounter()
        try await withLiveServer(responder: try uploadStack(counter: counter, maxInflated: 1 << 30, ratio: 100)) {
            port in
            let (status, body) = try await post(bomb, port: port, encoding: "gzip")
            #expect(status == "413")
            #expect(body.contains("ratio"))
        }
        #expect(counter.bytes.load(ordering: .relaxed) < 50 << 20)
    }

    @Test func corruptTruncatedAndTrailingBodiesAre400() async throws {
        defer { try? FileManager.default.removeItem(at: self.directory) }
        let (good, _) = try await pythonCompressedFile("gzip", size: 200_000, directory: self.directory)
        let data = try Data(contentsOf: good)
        let corrupt = self.directory.appendingPathComponent("corrupt")
        var broken = data
        broken.replaceSubrange(20..<60, with: Data(repeating: 0xFF, count: 40))
        try broken.write(to: corrupt)
        let truncated = self.directory.appendingPathComponent("truncated")
        try data.prefix(data.count / 2).write(to: truncated)
        let trailing = self.directory.appendingPathComponent("trailing")
        try (data + Data("garbage".utf8)).write(to: trailing)
        try await withLiveServer(responder: try uploadStack(counter: InflatedCounter())) { port in
            for file in [corrupt, truncated, trailing] {
                let (status, _) = try await post(file, port: port, encoding: "gzip")
                #expect(status == "400", "\(file.lastPathComponent)")
            }
        }
    }

    @Test func unsupportedCodingsAre415() async throws {
        let client = TestClient(responder: try uploadStack(counter: InflatedCounter()))
        for encoding in ["br", "gzip, gzip", "compress"] {
            let response = try await client.execute(
                .post, "/upload", headerFields: [.contentEncoding: encoding],
                body: RequestBody(buffer: ByteBuffer(string: "x")))
            #expect(response.status == .unsupportedMediaType, "\(encoding)")
            #expect(response.headerFields[.acceptEncoding] == "gzip, deflate")
        }
        let identity = try await client.execute(
            .post, "/upload", headerFields: [.contentEncoding: "identity"],
            body: RequestBody(buffer: ByteBuffer(string: "abc")))
        #expect(identity.bodyString.hasPrefix("3 "))
        #expect(throws: CompressionConfigurationError.self) {
            try RequestDecompressionMiddleware<BasicContext>(maxInflatedSize: 0)
        }
    }
}
