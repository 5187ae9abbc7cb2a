import Benchmark
import CBenchLibdeflate
import CCompressZlib
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataCompression

/// The ~100 KiB page of CompressionExample's `/big`, built the same way.
func bigPage() -> ByteBuffer {
    var text = "<!doctype html><html><head><title>Strata compression</title></head><body><pre>\n"
    var row = 0
    while text.utf8.count < 100 * 1024 {
        text +=
            "{\"id\": \(row), \"name\": \"item-\(row % 97)\", \"price\": \(row % 1000).\(row % 100), \"tags\": [\"alpha\", \"beta\"]}\n"
        row += 1
    }
    return ByteBuffer(string: text + "</pre></body></html>\n")
}

/// Raw zlib on `/big` next to the middleware compressing the same bytes at the same level, one
/// core, same run: their time per body is the throughput ratio the issue asks for. The package is
/// built with the `Libdeflate` trait, so the middleware has two rows: its zlib path (the cap set to
/// 0) and its libdeflate path (the default), and raw libdeflate at the mapped level is the third
/// reference.
func compressionBenchmarks() {
    let page = bigPage()
    // The raw rate: zlib itself on the page's bytes, read in place, one reused stream.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    guard CCompressZlib_deflateInit2(stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK else {
        fatalError("zlib starts with level 6")
    }
    let capacity = Int(deflateBound(stream, UInt(page.readableBytes)))
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
    Benchmark(
        "zlib: gzip /big, level 6 (reused stream)",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let produced = page.withUnsafeReadableBytes { input -> Int in
                stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
                stream.pointee.avail_in = UInt32(input.count)
                stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(capacity)
                guard deflate(stream, Z_FINISH) == Z_STREAM_END else { fatalError("the bound is enough") }
                return capacity - Int(stream.pointee.avail_out)
            }
            deflateReset(stream)
            blackHole(produced)
        }
    }

    // Raw libdeflate at the level the middleware maps zlib's 6 to, one reused compressor.
    let mapped = CompressionConfiguration.libdeflateLevel(matchingZlibLevel: 6)
    guard let compressor = CBenchLibdeflate.libdeflate_alloc_compressor(Int32(mapped)) else {
        fatalError("libdeflate allocates a compressor")
    }
    let libdeflateCapacity = CBenchLibdeflate.libdeflate_gzip_compress_bound(compressor, page.readableBytes)
    let libdeflateOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: libdeflateCapacity, alignment: 1)
    Benchmark(
        "libdeflate: gzip /big, level \(mapped) (reused compressor)",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let produced = page.withUnsafeReadableBytes { input in
                CBenchLibdeflate.libdeflate_gzip_compress(
                    compressor, input.baseAddress, input.count, libdeflateOutput.baseAddress, libdeflateCapacity)
            }
            guard produced > 0 else { fatalError("the bound is enough") }
            blackHole(produced)
        }
    }

    let responder = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(buffer: page))
    }
    let source = ContextSource(logger: Logger(label: "bench"))
    var head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/big")
    head.headerFields[.acceptEncoding] = "gzip, deflate"
    for (name, cap) in [("zlib path", 0), ("libdeflate path", CompressionConfiguration().libdeflateMaximumSize)] {
        var configuration = CompressionConfiguration()
        configuration.libdeflateMaximumSize = cap
        guard let compression = try? ResponseCompressionMiddleware<BasicContext>(configuration: configuration) else {
            fatalError("the default compression configuration is valid")
        }
        let stack = compression.wrapping(responder)
        Benchmark(
            "Compression middleware: gzip /big, level 6, \(name)",
            configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try await stack.respond(to: ServerRequest(head: head), context: BasicContext(source: source)))
            }
        }
    }
}
