#if Brotli
import CStrataBrotli

/// A brotli (RFC 7932) stream from the system libbrotlienc; built with the `Brotli` trait.
///
/// Brotli has no reset: the pool drops a finished stream and makes a new one, which costs little
/// because the encoder allocates its tables lazily, sized to the input.
final class BrotliEncoder: StreamEncoder {
    private let state: OpaquePointer

    /// - Throws: ``EncoderError`` when the encoder cannot be made or refuses a parameter.
    init(quality: Int, windowBits: Int) throws {
        guard let state = BrotliEncoderCreateInstance(nil, nil, nil) else {
            throw EncoderError(description: "BrotliEncoderCreateInstance failed")
        }
        self.state = state
        guard BrotliEncoderSetParameter(state, BROTLI_PARAM_QUALITY, UInt32(quality)) == BROTLI_TRUE,
            BrotliEncoderSetParameter(state, BROTLI_PARAM_LGWIN, UInt32(windowBits)) == BROTLI_TRUE,
            BrotliEncoderSetParameter(state, BROTLI_PARAM_MODE, UInt32(BROTLI_MODE_TEXT.rawValue)) == BROTLI_TRUE
        else {
            BrotliEncoderDestroyInstance(state)
            throw EncoderError(description: "brotli refused quality \(quality) or window \(windowBits)")
        }
    }

    deinit {
        BrotliEncoderDestroyInstance(self.state)
    }

    func step(
        input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, operation: EncoderOperation
    ) throws -> EncoderStep {
        var availableIn = input.count
        var nextIn: UnsafePointer<UInt8>? = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var availableOut = output.count
        var nextOut: UnsafeMutablePointer<UInt8>? = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let op: BrotliEncoderOperation
        switch operation {
        case .process: op = BROTLI_OPERATION_PROCESS
        case .flush: op = BROTLI_OPERATION_FLUSH
        case .finish: op = BROTLI_OPERATION_FINISH
        }
        guard
            BrotliEncoderCompressStream(self.state, op, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                == BROTLI_TRUE
        else {
            throw EncoderError(description: "brotli failed to compress")
        }
        let drained = availableIn == 0 && BrotliEncoderHasMoreOutput(self.state) == BROTLI_FALSE
        let complete = operation == .finish ? BrotliEncoderIsFinished(self.state) == BROTLI_TRUE : drained
        return EncoderStep(
            consumed: input.count - availableIn, produced: output.count - availableOut, complete: complete)
    }

    func reset() -> Bool { false }

    func bound(_ count: Int) -> Int {
        // 0 means "too large to bound"; the caller grows its buffer then.
        max(BrotliEncoderMaxCompressedSize(count), 64) + 16
    }

    /// A metadata block would pad, but only the encoder can place it: br is not padded.
    var paddingPlacement: PaddingPlacement { .none }

    func padding(_ count: Int) -> [UInt8]? { nil }
}
#endif
