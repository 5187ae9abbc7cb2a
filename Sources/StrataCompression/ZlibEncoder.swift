// compress-nio's C module: the system zlib's header and the `deflateInit2` shim. Its
// `ZlibCompressor` takes its input through `withUnsafeMutableReadableBytes`, which copies a body
// shared with other responses (a static page) on every response; this file drives the same
// zlib directly and reads the input in place.
import CCompressZlib

/// A zlib deflate stream producing gzip (RFC 1952) or zlib-format deflate (RFC 1950).
///
/// The `z_stream` lives at a fixed address for the stream's whole life, as zlib requires.
final class ZlibEncoder: StreamEncoder {
    private let stream: UnsafeMutablePointer<z_stream>

    /// - Throws: ``EncoderError`` when zlib refuses the parameters or has no memory.
    init(gzip: Bool, level: Int, memoryLevel: Int, windowBits: Int) throws {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        let bits = Int32(windowBits) + (gzip ? 16 : 0)
        let status = CCompressZlib_deflateInit2(
            self.stream, Int32(level), Z_DEFLATED, bits, Int32(memoryLevel), Z_DEFAULT_STRATEGY)
        guard status == Z_OK else {
            self.stream.deinitialize(count: 1)
            self.stream.deallocate()
            throw EncoderError(description: "deflateInit2 failed with status \(status)")
        }
    }

    deinit {
        deflateEnd(self.stream)
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    func step(
        input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, operation: EncoderOperation
    ) throws -> EncoderStep {
        let stream = self.stream
        stream.pointee.next_in = input.baseAddress.map {
            UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
        }
        stream.pointee.avail_in = UInt32(input.count)
        stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(output.count)
        let flush: Int32
        switch operation {
        case .process: flush = Z_NO_FLUSH
        case .flush: flush = Z_SYNC_FLUSH
        case .finish: flush = Z_FINISH
        }
        let status = deflate(stream, flush)
        let consumed = input.count - Int(stream.pointee.avail_in)
        let produced = output.count - Int(stream.pointee.avail_out)
        let outputLeft = stream.pointee.avail_out
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        let complete: Bool
        switch (status, operation) {
        case (Z_STREAM_END, _):
            complete = true
        case (Z_OK, .process):
            complete = stream.pointee.avail_in == 0
        case (Z_OK, .flush):
            // A sync flush is complete only if zlib had room to spare: a full buffer may hide more.
            complete = stream.pointee.avail_in == 0 && outputLeft > 0
        case (Z_OK, .finish):
            complete = false
        case (Z_BUF_ERROR, .process), (Z_BUF_ERROR, .flush):
            // No progress possible: nothing left to consume or flush.
            complete = stream.pointee.avail_in == 0 && outputLeft > 0
        case (Z_BUF_ERROR, .finish):
            guard outputLeft == 0 else { throw EncoderError(description: "deflate made no progress") }
            complete = false
        default:
            throw EncoderError(description: "deflate failed with status \(status)")
        }
        return EncoderStep(consumed: consumed, produced: produced, complete: complete)
    }

    func reset() -> Bool {
        deflateReset(self.stream) == Z_OK
    }

    func bound(_ count: Int) -> Int {
        // deflateBound covers a finished stream; a sync flush adds an empty stored block.
        Int(deflateBound(self.stream, UInt(count))) + 6
    }

    /// Only after a sync flush is the stream byte-aligned with no bits pending in zlib.
    var paddingPlacement: PaddingPlacement { .afterFlush }

    func padding(_ count: Int) -> [UInt8]? {
        DeflatePadding.blocks(count)
    }
}

/// Deflate blocks that decode to nothing, for length padding (see the guide's BREACH section).
///
/// On a byte boundary, a non-final empty stored block is 5 bytes (`00 00 00 ff ff`). One or two
/// empty fixed-Huffman blocks (10 bits each) in front of it make 6 or 7 bytes. Sums of 5, 6
/// and 7 reach every length from 10 up, so `count` must be at least 10.
enum DeflatePadding {
    static func blocks(_ count: Int) -> [UInt8]? {
        guard count >= 10 else { return nil }
        var left = count
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while left >= 15 {
            bytes += group(fixedBlocks: 0)
            left -= 5
        }
        // 10...14 as two groups of 5...7.
        let first = left / 2
        bytes += group(fixedBlocks: first - 5)
        bytes += group(fixedBlocks: left - first - 5)
        return bytes
    }

    /// `fixedBlocks` (0...2) empty fixed-Huffman blocks, then an empty stored block, aligned.
    private static func group(fixedBlocks: Int) -> [UInt8] {
        // Bits go out least significant first. A fixed block: BFINAL 0, BTYPE 01, then the
        // 7-bit end-of-block code 0000000. A stored block: BFINAL 0, BTYPE 00, pad to the byte,
        // LEN 0x0000, NLEN 0xffff.
        switch fixedBlocks {
        case 0: return [0x00, 0x00, 0x00, 0xFF, 0xFF]
        case 1: return [0x02, 0x00, 0x00, 0x00, 0xFF, 0xFF]  // bit 1; stored header at bits 10...12
        default: return [0x02, 0x08, 0x00, 0x00, 0x00, 0xFF, 0xFF]  // bits 1 and 11; stored at 20...22
        }
    }
}
