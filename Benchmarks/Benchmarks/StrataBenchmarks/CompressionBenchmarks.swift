import Benchmark
import CompressNIO
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
/// core, same run: their time per body is the throughput ratio the issue asks for.
func compressionBenchmarks() {
    let page = bigPage()
    var zlib = ZlibConfiguration()
    zlib.compressionLevel = 6
    guard let raw = try? ZlibCompressor(algorithm: .gzip, configuration: zlib) else {
        fatalError("zlib starts with level 6")
    }
    let allocator = ByteBufferAllocator()
    Benchmark(
        "zlib: gzip /big, level 6 (reused stream)",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            var input = page
            var output = allocator.buffer(capacity: raw.maxSize(from: input))
            try raw.deflate(from: &input, to: &output, flush: .finish)
            try raw.reset()
            blackHole(output)
        }
    }

    let responder = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(buffer: page))
    }
    guard let compression = try? ResponseCompressionMiddleware<BasicContext>() else {
        fatalError("the default compression configuration is valid")
    }
    let stack = compression.wrapping(responder)
    let source = ContextSource(logger: Logger(label: "bench"))
    var head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/big")
    head.headerFields[.acceptEncoding] = "gzip, deflate, br"
    Benchmark(
        "Compression middleware: gzip /big, level 6",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await stack.respond(to: ServerRequest(head: head), context: BasicContext(source: source)))
        }
    }
}
