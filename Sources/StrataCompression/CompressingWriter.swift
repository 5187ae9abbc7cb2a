import CoreMetrics
import HTTPTypes
import NIOCore
import Strata

/// Compresses a response body on its way to the writer it wraps: one stream per response (taken
/// from a pool), output sent in windows of at most ``window`` bytes, nothing else buffered beyond
/// the encoder's own state.
///
/// A body whose length was unknown is held until ``Decision/minimumSize`` bytes arrived (or a
/// flush): if it ends before that, the writer takes the `Content-Encoding` back, when the server
/// has not sent the head yet, and sends the bytes as they are.
struct CompressingWriter: ResponseBodyWriter {
    /// Output is sent to the client in buffers of at most this many bytes.
    static let window = 32 * 1024

    /// What the middleware decided before the body was written.
    struct Decision: Sendable {
        /// Bytes to see before compressing; 0 compresses from the first byte.
        var minimumSize: Int
        /// Sync-flush after every write, so each chunk (each server-sent event) reaches the client.
        var flushesEachWrite: Bool
        /// Extra bytes of length padding, or 0.
        var padding: Int
        /// The fields as they were before the middleware changed them, to restore on a take-back.
        var originalETag: String?
        var originalAcceptRanges: String?
    }

    private enum Phase {
        case deciding(pending: ByteBuffer)
        case compressing(PooledEncoder)
        case passingThrough
        case finished
    }

    private var parent: any ResponseBodyWriter
    private let pool: EncoderPool
    private let decision: Decision
    private var phase: Phase
    private var output: ByteBuffer
    private let allocator = ByteBufferAllocator()

    init(parent: any ResponseBodyWriter, pool: EncoderPool, decision: Decision) throws {
        self.parent = parent
        self.pool = pool
        self.decision = decision
        self.output = ByteBuffer()
        self.phase = .deciding(pending: ByteBuffer())
        if decision.minimumSize == 0 || decision.flushesEachWrite { try self.begin() }
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        switch self.phase {
        case .deciding(var pending):
            if pending.readableBytes == 0 && buffer.readableBytes >= self.decision.minimumSize {
                try self.begin()
                try await self.encode(buffer, .process)
                return
            }
            self.phase = .finished  // keep `pending` uniquely referenced while it grows
            pending.writeImmutableBuffer(buffer)
            self.phase = .deciding(pending: pending)
            if pending.readableBytes >= self.decision.minimumSize {
                try self.begin()
                try await self.encode(pending, .process)
            }
        case .compressing:
            try await self.encode(buffer, self.decision.flushesEachWrite ? .flush : .process)
            if self.decision.flushesEachWrite { try await self.send() }
        case .passingThrough:
            try await self.parent.write(buffer)
        case .finished:
            throw ResponseBodyWrittenAfterFinishError()
        }
    }

    mutating func flush() async throws {
        switch self.phase {
        case .deciding(let pending):
            try self.begin()
            try await self.encode(pending, .flush)
            try await self.send()
        case .compressing:
            try await self.encode(ByteBuffer(), .flush)
            try await self.send()
        case .passingThrough, .finished:
            break
        }
        try await self.parent.flush()
    }

    mutating func finish(trailers: HTTPFields?) async throws {
        switch self.phase {
        case .deciding(let pending):
            let decision = self.decision
            let tookBack = self.parent.updateHeaderFields { fields in
                fields[.contentEncoding] = nil
                fields[.eTag] = decision.originalETag
                fields[.acceptRanges] = decision.originalAcceptRanges
            }
            if tookBack {
                self.phase = .finished
                try await self.parent.write(pending)
                try await self.parent.finish(trailers: trailers)
                return
            }
            try self.begin()
            try await self.end(pending)
        case .compressing:
            try await self.end(ByteBuffer())
        case .passingThrough:
            self.phase = .finished
        case .finished:
            return
        }
        try await self.parent.finish(trailers: trailers)
    }

    mutating func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        self.parent.updateHeaderFields(update)
    }

    /// Takes an encoder and starts the compressed stream.
    private mutating func begin() throws {
        let encoder = try self.pool.checkOut()
        self.phase = .compressing(encoder)
        self.pool.metrics.messages.increment()
        self.output = self.allocator.buffer(capacity: Self.window)
        if self.decision.padding > 0, encoder.encoder.paddingPlacement == .start,
            let bytes = encoder.encoder.padding(self.decision.padding)
        {
            self.output.writeBytes(bytes)
        }
    }

    /// Compresses the last input, pads if asked, ends the stream and sends what is left.
    private mutating func end(_ input: ByteBuffer) async throws {
        guard case .compressing(let pooled) = self.phase else { return }
        let padding = self.decision.padding
        if padding > 0, pooled.encoder.paddingPlacement == .afterFlush {
            try await self.encode(input, .flush)
            if let bytes = pooled.encoder.padding(padding) { self.output.writeBytes(bytes) }
            try await self.encode(ByteBuffer(), .finish)
        } else {
            try await self.encode(input, .finish)
        }
        self.phase = .finished
        // The stream is complete: the encoder can serve another response.
        self.pool.checkIn(pooled)
        try await self.send()
    }

    private mutating func encode(_ input: ByteBuffer, _ operation: EncoderOperation) async throws {
        guard case .compressing(let pooled) = self.phase else { return }
        let metrics = self.pool.metrics
        if input.readableBytes > 0 { metrics.bytesIn.increment(by: Int64(input.readableBytes)) }
        let allocator = self.allocator
        var parent = self.parent
        defer { self.parent = parent }
        try await pooled.encoder.encode(
            input, operation: operation, into: &self.output, window: Self.window, allocator: allocator
        ) { full in
            metrics.bytesOut.increment(by: Int64(full.readableBytes))
            try await parent.write(full)
        }
    }

    /// Sends the output produced so far.
    private mutating func send() async throws {
        guard self.output.readableBytes > 0 else { return }
        self.pool.metrics.bytesOut.increment(by: Int64(self.output.readableBytes))
        let full = self.output
        self.output = self.allocator.buffer(capacity: Self.window)
        try await self.parent.write(full)
    }
}

/// A compressed body was written after it ended.
struct ResponseBodyWrittenAfterFinishError: Error, CustomStringConvertible {
    var description: String { "the compressed response body was written after it finished" }
}

extension EncoderPool {
    /// Compresses a whole body in one go into one buffer sized by the encoder's bound.
    func compressWhole(_ body: ByteBuffer, padding: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let pooled = try self.checkOut()
        let output = try pooled.encoder.encodeWhole(body, padding: padding, allocator: allocator)
        self.checkIn(pooled)
        self.metrics.messages.increment()
        self.metrics.bytesIn.increment(by: Int64(body.readableBytes))
        self.metrics.bytesOut.increment(by: Int64(output.readableBytes))
        return output
    }
}
