#if Zstd
import CStrataZstd

/// A zstd (RFC 8878) stream from the system libzstd; built with the `Zstd` trait.
final class ZstdEncoder: StreamEncoder {
    private let context: OpaquePointer

    /// - Throws: ``EncoderError`` when the context cannot be made or refuses a parameter.
    init(level: Int) throws {
        guard let context = ZSTD_createCCtx() else { throw EncoderError(description: "ZSTD_createCCtx failed") }
        self.context = context
        // RFC 8878 §3.1.1.1.2: HTTP decoders may refuse windows above 8 MiB.
        let results = [
            ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)),
            ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, 23),
            ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1),
        ]
        guard results.allSatisfy({ ZSTD_isError($0) == 0 }) else {
            ZSTD_freeCCtx(context)
            throw EncoderError(description: "zstd refused level \(level)")
        }
    }

    deinit {
        ZSTD_freeCCtx(self.context)
    }

    func step(
        input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, operation: EncoderOperation
    ) throws -> EncoderStep {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let directive: ZSTD_EndDirective
        switch operation {
        case .process: directive = ZSTD_e_continue
        case .flush: directive = ZSTD_e_flush
        case .finish: directive = ZSTD_e_end
        }
        let remaining = ZSTD_compressStream2(self.context, &outBuffer, &inBuffer, directive)
        if ZSTD_isError(remaining) != 0 {
            throw EncoderError(description: "zstd: \(String(cString: ZSTD_getErrorName(remaining)))")
        }
        let complete = operation == .process ? inBuffer.pos == inBuffer.size : remaining == 0
        return EncoderStep(consumed: inBuffer.pos, produced: outBuffer.pos, complete: complete)
    }

    func reset() -> Bool {
        ZSTD_isError(ZSTD_CCtx_reset(self.context, ZSTD_reset_session_only)) == 0
    }

    func bound(_ count: Int) -> Int {
        ZSTD_compressBound(count) + 32
    }

    /// A skippable frame (RFC 8878 §3.1.2) goes in front of the data frame.
    var paddingPlacement: PaddingPlacement { .start }

    func padding(_ count: Int) -> [UInt8]? {
        // Magic, length, then the skipped bytes.
        guard count >= 8, count - 8 <= Int(UInt32.max) else { return nil }
        let length = UInt32(count - 8)
        var bytes: [UInt8] = [0x50, 0x2A, 0x4D, 0x18]
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> shift)) }
        bytes += repeatElement(0, count: count - 8)
        return bytes
    }
}
#endif
