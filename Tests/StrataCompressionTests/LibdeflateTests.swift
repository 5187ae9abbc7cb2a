#if Libdeflate
import Foundation
import HTTPTypes
import MetricsTestKit
import NIOCore
import Strata
import StrataCompression
import StrataTestSupport
import StrataTesting
import Testing

/// The whole-body path of the `Libdeflate` trait: what it produces must be ordinary gzip and
/// zlib streams for every independent decoder, and the metrics must say which path ran.
@Suite struct LibdeflateTests {
    static let cap = 8 * 1024 * 1024

    /// The response counters of one path and coding, 0 when the path never ran.
    func responses(_ metrics: TestMetrics, _ path: String, _ coding: String) -> Int64 {
        (try? metrics.expectCounter("strata_compression_responses_total", [("coding", coding), ("path", path)]))?
            .totalValue ?? 0
    }

    @Test(arguments: ["gzip", "deflate"])
    func pythonDecodesEverySizeAndTheCapPlusOneTakesZlib(_ coding: String) async throws {
        let metrics = TestMetrics()
        let client = TestClient(
            responder: try compressingStack {
                $0.metricsFactory = metrics
                $0.minimumSize = 0
            })
        let sizes = [0, 1, 1024, 102_400, Self.cap]
        for size in sizes {
            let response = try await client.execute(.get, "/text/\(size)", headerFields: [.acceptEncoding: coding])
            #expect(response.headerFields[.contentEncoding] == coding, "\(size)")
            #expect(response.contentLength == response.body.readableBytes, "\(size): an exact Content-Length")
            let decoded = try await pythonDecodes(
                Data(response.body.readableBytesView), coding: coding, expected: bigText(size))
            #expect(decoded, "\(size) bytes through \(coding)")
        }
        #expect(responses(metrics, "libdeflate", coding) == Int64(sizes.count))
        #expect(responses(metrics, "zlib", coding) == 0)

        let over = try await client.execute(.get, "/text/\(Self.cap + 1)", headerFields: [.acceptEncoding: coding])
        #expect(over.headerFields[.contentEncoding] == coding)
        #expect(over.contentLength == over.body.readableBytes)
        let decoded = try await pythonDecodes(
            Data(over.body.readableBytesView), coding: coding, expected: bigText(Self.cap + 1))
        #expect(decoded, "cap + 1 through \(coding)")
        #expect(responses(metrics, "libdeflate", coding) == Int64(sizes.count), "the cap + 1 body is not libdeflate's")
        #expect(responses(metrics, "zlib", coding) == 1, "the cap + 1 body went through zlib")
        let bytesIn = try metrics.expectCounter(
            "strata_compression_bytes_in_total", [("coding", coding), ("path", "libdeflate")])
        #expect(bytesIn.totalValue == Int64(sizes.reduce(0, +)))
    }

    @Test(arguments: ["gzip", "deflate"])
    func curlDecodesOverASocket(_ coding: String) async throws {
        let stack = try compressingStack { $0.minimumSize = 0 }
        try await withLiveServer(responder: stack) { port in
            for size in [0, 1, 1024, 102_400, Self.cap, Self.cap + 1] {
                let file = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "strata-libdeflate-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: file) }
                let output = try await ExternalProcess.run(
                    try ExternalProcess.curl(),
                    [
                        "-sS", "--compressed", "-H", "Accept-Encoding: \(coding)", "-o", file.path, "-w",
                        "%{http_code} %{size_download} %header{content-encoding}",
                        "http://127.0.0.1:\(port)/text/\(size)",
                    ])
                #expect(output.stdout.hasPrefix("200 "), "\(size): \(output.stdout) \(output.stderr)")
                #expect(output.stdout.hasSuffix(" \(coding)"), "\(size): \(output.stdout)")
                let same = try Data(contentsOf: file) == Data(bigText(size).utf8)  // no 8 MiB diff on failure
                #expect(same, "\(size) bytes through \(coding)")
            }
        }
    }

    @Test func headersAreThoseOfTheZlibPath() async throws {
        let client = TestClient(responder: try compressingStack())
        let zlib = TestClient(responder: try compressingStack { $0.libdeflateMaximumSize = 0 })
        let response = try await client.execute(.get, "/text/102400", headerFields: [.acceptEncoding: "gzip"])
        let reference = try await zlib.execute(.get, "/text/102400", headerFields: [.acceptEncoding: "gzip"])
        #expect(response.headerFields[.contentEncoding] == "gzip")
        #expect(response.headerFields[.eTag] == "W/\"v1\"")
        #expect(response.headerFields[.acceptRanges] == nil)
        #expect(response.headerFields[.vary] == "Accept-Encoding, Origin")
        #expect(response.contentLength == response.body.readableBytes)
        var fields = response.headerFields
        var referenceFields = reference.headerFields
        fields[.contentLength] = nil
        referenceFields[.contentLength] = nil
        #expect(fields == referenceFields)
        // The mapped level (6 for zlib's 6) is no larger than zlib on this text.
        #expect(response.body.readableBytes <= reference.body.readableBytes)
    }

    @Test(arguments: ["gzip", "deflate"])
    func paddingVariesTheLengthExactlyAndDecodersSkipIt(_ coding: String) async throws {
        let plain = TestClient(responder: try compressingStack())
        let base = try await plain.execute(.get, "/text/5000", headerFields: [.acceptEncoding: coding]).body
            .readableBytes
        let metrics = TestMetrics()
        let padded = try compressingStack {
            $0.lengthPadding = 40
            $0.metricsFactory = metrics
        }
        let client = TestClient(responder: padded)
        var lengths: Set<Int> = []
        for _ in 0..<24 {
            let response = try await client.execute(.get, "/text/5000", headerFields: [.acceptEncoding: coding])
            let body = Data(response.body.readableBytesView)
            lengths.insert(body.count)
            #expect(try await pythonDecodes(body, coding: coding, expected: bigText(5000)))
        }
        // No flush here: the padding is all the difference, 10...50 bytes.
        #expect(lengths.allSatisfy { (base + 10)...(base + 50) ~= $0 }, "\(base) \(lengths.sorted())")
        #expect(lengths.count > 3, "the length varies: \(lengths.sorted())")
        #expect(responses(metrics, "libdeflate", coding) == 24)
        try await withLiveServer(responder: padded) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(),
                ["-sS", "--compressed", "-H", "Accept-Encoding: \(coding)", "http://127.0.0.1:\(port)/text/5000"])
            #expect(output.stdout == bigText(5000), "\(output.stderr)")
        }
    }

    /// Many responses at once through the pool: each gets a compressor of its own.
    @Test func concurrentResponsesNeverShareACompressor() async throws {
        let client = TestClient(responder: try compressingStack())
        let sizes = (0..<48).map { 2000 + $0 * 1500 }
        let bodies = try await withThrowingTaskGroup(of: (Int, Data).self) { group in
            for size in sizes {
                group.addTask {
                    let response = try await client.execute(
                        .get, "/text/\(size)", headerFields: [.acceptEncoding: "gzip"])
                    return (size, Data(response.body.readableBytesView))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for size in sizes {
            let decoded = try await pythonDecodes(try #require(bodies[size]), coding: "gzip", expected: bigText(size))
            #expect(decoded, "\(size)")
        }
    }

    @Test func levelsAreMappedAndValidated() throws {
        let mapped = (1...9).map { CompressionConfiguration.libdeflateLevel(matchingZlibLevel: $0) }
        #expect(mapped == [1, 1, 2, 3, 5, 6, 6, 7, 7])
        for level in [0, 13] {
            #expect {
                try ResponseCompressionMiddleware<BasicContext>(
                    configuration: {
                        var configuration = CompressionConfiguration()
                        configuration.libdeflateLevel = level
                        configuration.libdeflateMaximumSize = -1
                        return configuration
                    }())
            } throws: { error in
                (error as? CompressionConfigurationError)?.problems.count == 2
            }
        }
    }
}
#endif
