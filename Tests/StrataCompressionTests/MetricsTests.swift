import HTTPTypes
import MetricsTestKit
import NIOCore
import Strata
import StrataCompression
import StrataTesting
import Testing

@Suite struct CompressionMetricsTests {
    @Test func compressedBytesInAndOutAreCounted() async throws {
        let metrics = TestMetrics()
        let client = TestClient(responder: try compressingStack { $0.metricsFactory = metrics })
        let buffered = try await client.execute(.get, "/text/102400", headerFields: [.acceptEncoding: "gzip"])
        let streamed = try await client.execute(.get, "/stream/50000", headerFields: [.acceptEncoding: "gzip"])
        // The whole body goes through libdeflate when the trait is on, the stream through zlib.
        #if Libdeflate
        let wholePath = "libdeflate"
        #else
        let wholePath = "zlib"
        #endif
        var counted: [String: (responses: Int64, bytesIn: Int64, bytesOut: Int64)] = [:]
        for path in Set([wholePath, "zlib"]) {
            let dimensions = [("coding", "gzip"), ("path", path)]
            counted[path] = (
                try metrics.expectCounter("strata_compression_responses_total", dimensions).totalValue,
                try metrics.expectCounter("strata_compression_bytes_in_total", dimensions).totalValue,
                try metrics.expectCounter("strata_compression_bytes_out_total", dimensions).totalValue
            )
        }
        #expect(counted.values.map(\.responses).reduce(0, +) == 2)
        #expect(counted.values.map(\.bytesIn).reduce(0, +) == 152_400)
        #expect(counted[wholePath]?.bytesIn ?? 0 >= 102_400)
        #expect(
            counted.values.map(\.bytesOut).reduce(0, +)
                == Int64(buffered.body.readableBytes + streamed.body.readableBytes)
        )
    }

    @Test func decompressionRejectionsAreCountedByReason() async throws {
        let metrics = TestMetrics()
        let middleware = try RequestDecompressionMiddleware<BasicContext>(
            maxInflatedSize: 1024, metricsFactory: metrics)
        let echo = ClosureResponder<BasicContext> { request, _ in
            ServerResponse(status: .ok, body: .init(buffer: try await request.body.collect(upTo: .max)))
        }
        let client = TestClient(responder: middleware.wrapping(echo))
        let unsupported = try await client.execute(
            .post, "/", headerFields: [.contentEncoding: "br"], body: .init(buffer: ByteBuffer(string: "x")))
        #expect(unsupported.status == .unsupportedMediaType)
        let corrupt = try await client.execute(
            .post, "/", headerFields: [.contentEncoding: "gzip"],
            body: .init(buffer: ByteBuffer(string: "not gzip at all")))
        #expect(corrupt.status == .badRequest)
        #expect(
            try metrics.expectCounter("strata_decompression_rejected_total", [("reason", "coding")]).totalValue == 1)
        #expect(
            try metrics.expectCounter("strata_decompression_rejected_total", [("reason", "corrupt")]).totalValue == 1)
        #expect(try metrics.expectCounter("strata_decompression_requests_total", [("coding", "gzip")]).totalValue == 1)
    }
}
