import CompressNIO
import HTTPTypes
import NIOCore
import Strata

/// Compresses a response body on its way to the writer it wraps: one zlib stream per response,
/// output sent as it is produced, nothing buffered beyond zlib's own window.
struct CompressingWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    let compressor: ZlibCompressor
    /// Sync-flush after every write, so each chunk (each server-sent event) reaches the client.
    let flushesEachWrite: Bool
    let allocator = ByteBufferAllocator()
    var finished = false

    init(
        parent: any ResponseBodyWriter, coding: ContentCoding, configuration: CompressionConfiguration,
        flushesEachWrite: Bool
    )
        throws
    {
        self.parent = parent
        var zlib = ZlibConfiguration()
        zlib.compressionLevel = Int32(configuration.level)
        zlib.memoryLevel = Int32(configuration.memoryLevel)
        zlib.windowSize = Int32(configuration.windowBits)
        self.compressor = try ZlibCompressor(algorithm: coding == .gzip ? .gzip : .zlib, configuration: zlib)
        self.flushesEachWrite = flushesEachWrite
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        try await self.deflate(buffer, flush: self.flushesEachWrite ? .sync : .no)
    }

    mutating func flush() async throws {
        try await self.deflate(ByteBuffer(), flush: .sync)
        try await self.parent.flush()
    }

    mutating func finish(trailers: HTTPFields?) async throws {
        guard !self.finished else { return }
        self.finished = true
        try await self.deflate(ByteBuffer(), flush: .finish)
        try await self.parent.finish(trailers: trailers)
    }

    /// Feeds `input` to zlib and writes what comes out, growing the output buffer while zlib
    /// still has output pending.
    private mutating func deflate(_ input: ByteBuffer, flush: CompressNIOFlush) async throws {
        var input = input
        var output = self.allocator.buffer(capacity: max(self.compressor.maxSize(from: input), 1024))
        while true {
            do {
                try self.compressor.deflate(from: &input, to: &output, flush: flush)
                if input.readableBytes == 0 || flush != .no { break }
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // Output full: send it and go on with a fresh buffer.
            }
            if output.readableBytes > 0 {
                try await self.parent.write(output)
                output = self.allocator.buffer(capacity: 16 * 1024)
            }
        }
        if output.readableBytes > 0 { try await self.parent.write(output) }
    }
}

/// Gathers a body in memory (for bodies that were in memory to begin with).
struct CollectingBodyWriter: ResponseBodyWriter {
    var buffer = ByteBuffer()

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        self.buffer.writeBuffer(&buffer)
    }

    mutating func finish(trailers: HTTPFields?) async throws {}
}
