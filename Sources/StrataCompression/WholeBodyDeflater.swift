#if Libdeflate
import CStrataLibdeflate
import CoreMetrics
import NIOCore
import Synchronization

/// One libdeflate compressor: gzip or zlib-format deflate of a whole in-memory body in one call.
///
/// libdeflate does not stream, so this serves only bodies that are one buffer already. The
/// output is built here around libdeflate's raw deflate: the gzip (RFC 1952) or zlib (RFC 1950)
/// header, the optional length padding (empty non-final deflate blocks, the same as the zlib
/// path's, here at the start of the deflate data), the compressed blocks, then the checksum and
/// length trailer computed by libdeflate over the input in place.
final class WholeBodyDeflater {
    private let compressor: OpaquePointer
    /// The libdeflate level, 1...12.
    let level: Int

    /// - Throws: ``EncoderError`` when libdeflate has no memory for the compressor.
    init(level: Int) throws {
        guard let compressor = libdeflate_alloc_compressor(Int32(level)) else {
            throw EncoderError(description: "libdeflate_alloc_compressor(\(level)) failed")
        }
        self.compressor = compressor
        self.level = level
    }

    deinit {
        libdeflate_free_compressor(self.compressor)
    }

    /// Compresses all of `input` into a new buffer: the whole gzip or zlib stream.
    ///
    /// - Parameters:
    ///   - gzip: gzip when `true`, the zlib format (the `deflate` coding) when `false`.
    ///   - padding: Extra bytes of empty deflate blocks, 0 or at least 10.
    /// - Throws: ``EncoderError`` if libdeflate reports that the output did not fit its own bound.
    func compress(_ input: ByteBuffer, gzip: Bool, padding: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let count = input.readableBytes
        let paddingBytes = padding > 0 ? DeflatePadding.blocks(padding) ?? [] : []
        let bound = libdeflate_deflate_compress_bound(self.compressor, count)
        var output = allocator.buffer(capacity: 10 + paddingBytes.count + bound + 8)
        if gzip {
            // ID1 ID2, CM deflate, no flags, no modification time, XFL, OS Unix (as zlib writes).
            let extraFlags: UInt8 = self.level >= 9 ? 2 : (self.level == 1 ? 4 : 0)
            output.writeBytes([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, extraFlags, 0x03])
        } else {
            // CMF: deflate with a 32 KiB window; FLG: the level class, and FCHECK so that the
            // 16-bit header is a multiple of 31.
            let levelClass: UInt16 = self.level < 2 ? 0 : (self.level < 6 ? 1 : (self.level == 6 ? 2 : 3))
            var header: UInt16 = 0x7800 | (levelClass << 6)
            header += 31 - header % 31
            output.writeInteger(header, endianness: .big)
        }
        output.writeBytes(paddingBytes)
        let compressor = self.compressor
        let (produced, checksum) = input.withUnsafeReadableBytes { inputBytes in
            let produced = output.withUnsafeMutableWritableBytes { outputBytes in
                libdeflate_deflate_compress(
                    compressor, inputBytes.baseAddress, count, outputBytes.baseAddress, outputBytes.count)
            }
            let checksum =
                gzip
                ? libdeflate_crc32(0, inputBytes.baseAddress, count)
                : libdeflate_adler32(1, inputBytes.baseAddress, count)
            return (produced, checksum)
        }
        // 0 means "did not fit": the buffer was sized by libdeflate's own bound, so this is a
        // library fault, and the caller drops this compressor.
        guard produced > 0 else {
            throw EncoderError(description: "libdeflate produced no output for \(count) bytes within its bound")
        }
        output.moveWriterIndex(forwardBy: produced)
        if gzip {
            output.writeInteger(checksum, endianness: .little)
            output.writeInteger(UInt32(truncatingIfNeeded: count), endianness: .little)
        } else {
            output.writeInteger(checksum, endianness: .big)
        }
        return output
    }
}

/// Keeps libdeflate compressors for reuse between responses, and counts what they compress.
///
/// A compressor holds its match-finder tables (a few hundred KiB), so one is allocated per
/// concurrent use, not per response: compression runs without suspending, so at most one
/// compressor per thread running responses is out at a time, and the pool stays that small.
final class WholeBodyDeflaterPool: Sendable {
    /// The libdeflate level of every compressor.
    let level: Int
    /// Bodies up to this many bytes take this path.
    let maximumSize: Int
    private let idle = Mutex<[PooledDeflater]>([])
    private let capacity: Int
    let gzipMetrics: CompressionMetrics
    let deflateMetrics: CompressionMetrics

    init(level: Int, maximumSize: Int, configuration: CompressionConfiguration, capacity: Int = 32) throws {
        self.level = level
        self.maximumSize = maximumSize
        self.capacity = capacity
        self.gzipMetrics = CompressionMetrics(
            prefix: "strata_compression", messages: "responses", coding: .gzip, path: .libdeflate,
            factory: configuration.metricsFactory)
        self.deflateMetrics = CompressionMetrics(
            prefix: "strata_compression", messages: "responses", coding: .deflate, path: .libdeflate,
            factory: configuration.metricsFactory)
        // Fail at construction, not on the first response, if the library cannot allocate one.
        let first = PooledDeflater(try WholeBodyDeflater(level: level))
        self.idle.withLock { $0.append(first) }
    }

    /// Compresses a whole body; a compressor that failed is dropped, never reused.
    func compress(_ body: ByteBuffer, coding: ContentCoding, padding: Int, allocator: ByteBufferAllocator) throws
        -> ByteBuffer
    {
        let pooled = try self.idle.withLock({ $0.popLast() }) ?? PooledDeflater(WholeBodyDeflater(level: self.level))
        let output = try pooled.deflater.compress(body, gzip: coding == .gzip, padding: padding, allocator: allocator)
        self.idle.withLock { idle in
            if idle.count < self.capacity { idle.append(pooled) }
        }
        let metrics = coding == .gzip ? self.gzipMetrics : self.deflateMetrics
        metrics.messages.increment()
        metrics.bytesIn.increment(by: Int64(body.readableBytes))
        metrics.bytesOut.increment(by: Int64(output.readableBytes))
        return output
    }
}

/// A compressor handed from the pool to one response at a time.
///
/// `@unchecked Sendable`: the pool's mutex hands a compressor to exactly one caller, which uses
/// it synchronously (no suspension) and gives it back through the same mutex, which orders the
/// two uses; a compressor that failed is never given back.
final class PooledDeflater: @unchecked Sendable {
    let deflater: WholeBodyDeflater

    init(_ deflater: WholeBodyDeflater) {
        self.deflater = deflater
    }
}
#endif
