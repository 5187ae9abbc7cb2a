import CompressNIO
import CoreMetrics
import HTTPTypes
import NIOCore
import Strata

/// Compresses a response body on its way to the writer it wraps: one zlib stream per response
/// (taken from a pool),
/// output sent as it is produced, nothing buffered beyond zlib's own window.
struct CompressingWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    let pool: CompressorPool
    let pooled: PooledCompressor
    var compressor: ZlibCompressor { self.pooled.zlib }
    /// Sync-flush after every write, so each chunk (each server-sent event) reaches the client.
    let flushesEachWrite: Bool
    let allocator = ByteBufferAllocator()
    var finished = false

    init(parent: any ResponseBodyWriter, pool: CompressorPool, flushesEachWrite: Bool) throws {
        self.parent = parent
        self.pool = pool
        self.pooled = try pool.checkOut()
        pool.metrics.messages.increment()
        self.flushesEachWrite = flushesEachWrite
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        self.pool.metrics.bytesIn.increment(by: Int64(buffer.readableBytes))
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
        // The stream is complete: the compressor can serve another response.
        self.pool.checkIn(self.pooled)
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
                self.pool.metrics.bytesOut.increment(by: Int64(output.readableBytes))
                try await self.parent.write(output)
                output = self.allocator.buffer(capacity: 16 * 1024)
            }
        }
        if output.readableBytes > 0 {
            self.pool.metrics.bytesOut.increment(by: Int64(output.readableBytes))
            try await self.parent.write(output)
        }
    }
}

extension CompressorPool {
    /// Compresses a whole body in one zlib call into one buffer sized by `deflateBound`.
    func compressWhole(_ body: ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let pooled = try self.checkOut()
        var input = body
        var output = allocator.buffer(capacity: pooled.zlib.maxSize(from: input))
        try pooled.zlib.deflate(from: &input, to: &output, flush: .finish)
        self.checkIn(pooled)
        self.metrics.messages.increment()
        self.metrics.bytesIn.increment(by: Int64(body.readableBytes))
        self.metrics.bytesOut.increment(by: Int64(output.readableBytes))
        return output
    }
}
