import NIOCore

/// What one call of an encoder is asked to do with the input it is given.
enum EncoderOperation {
    /// Consume input; output may be held back.
    case process
    /// Consume input and emit everything so far, byte-aligned, so the client can decode it now.
    case flush
    /// Consume input and end the stream.
    case finish
}

/// The result of one call of an encoder.
struct EncoderStep {
    /// Input bytes consumed.
    var consumed: Int
    /// Output bytes produced.
    var produced: Int
    /// Whether the operation is complete: all input consumed and, for `flush`/`finish`, all
    /// output emitted. When `false` the caller provides more output space and calls again.
    var complete: Bool
}

/// An encoder failed in a way that more output space cannot fix.
struct EncoderError: Error, CustomStringConvertible {
    let description: String
}

/// One compression stream of a content coding, reused between responses through
/// ``EncoderPool`` (so its tables are allocated once).
///
/// Implementations wrap a C library's stream state; they are used by one response at a time.
protocol StreamEncoder: AnyObject {
    /// Encodes from `input` into `output` once.
    func step(
        input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, operation: EncoderOperation
    ) throws -> EncoderStep
    /// Returns the stream to its initial state for the next response; `false` if it cannot be.
    func reset() -> Bool
    /// An upper bound of the output for `count` input bytes compressed and finished in one go.
    func bound(_ count: Int) -> Int
    /// Where this coding can place length padding.
    var paddingPlacement: PaddingPlacement { get }
    /// Bytes that decoders skip, making the body exactly `count` bytes longer when placed as
    /// ``paddingPlacement`` says; `nil` when the coding cannot pad by `count`.
    func padding(_ count: Int) -> [UInt8]?
}

/// Where a coding's length padding goes.
enum PaddingPlacement {
    /// In front of the compressed stream.
    case start
    /// After a flush, before the end of the stream.
    case afterFlush
    /// The coding is not padded.
    case none
}

extension StreamEncoder {
    /// Runs `operation` over all of `input`, appending output to `output` and handing each full
    /// output buffer to `emit` (then continuing in a fresh buffer of `window` bytes).
    ///
    /// The input is read in place: a body shared with other responses is not copied.
    func encode(
        _ input: ByteBuffer,
        operation: EncoderOperation,
        into output: inout ByteBuffer,
        window: Int,
        allocator: ByteBufferAllocator,
        emit: (ByteBuffer) async throws -> Void
    ) async throws {
        var offset = 0
        while true {
            if output.writableBytes == 0 {
                try await emit(output)
                output = allocator.buffer(capacity: window)
            }
            if try self.step(input, from: &offset, into: &output, operation) { return }
        }
    }

    /// One call of the encoder from `input` at `offset` into `output`'s free space, both moved
    /// on; `true` when the operation is complete.
    private func step(
        _ input: ByteBuffer, from offset: inout Int, into output: inout ByteBuffer, _ operation: EncoderOperation
    ) throws -> Bool {
        let start = offset
        let step = try input.withUnsafeReadableBytes { inputBytes in
            try output.withUnsafeMutableWritableBytes { outputBytes in
                try self.step(
                    input: UnsafeRawBufferPointer(rebasing: inputBytes[start...]), output: outputBytes,
                    operation: operation)
            }
        }
        offset += step.consumed
        output.moveWriterIndex(forwardBy: step.produced)
        return step.complete
    }

    /// Compresses all of `input` and ends the stream, into one buffer sized by ``bound(_:)``.
    func encodeWhole(_ input: ByteBuffer, padding: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var output = allocator.buffer(capacity: self.bound(input.readableBytes) + padding + 16)
        var offset = 0
        func run(_ operation: EncoderOperation) throws {
            while true {
                if output.writableBytes == 0 { output.reserveCapacity(minimumWritableBytes: 4096) }
                if try self.step(input, from: &offset, into: &output, operation) { return }
            }
        }
        switch padding > 0 ? self.paddingPlacement : .none {
        case .start:
            if let bytes = self.padding(padding) { output.writeBytes(bytes) }
            try run(.finish)
        case .afterFlush:
            try run(.flush)
            if let bytes = self.padding(padding) { output.writeBytes(bytes) }
            try run(.finish)
        case .none:
            try run(.finish)
        }
        return output
    }
}
