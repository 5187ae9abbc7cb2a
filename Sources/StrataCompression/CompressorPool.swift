import Synchronization

/// Keeps encoders for reuse between responses.
///
/// A fresh deflate stream allocates about 270 KiB (window and hash tables); glibc serves that
/// with `mmap`, so an encoder per response costs system calls and page faults on every response.
/// A reset stream costs a memset of its hash table instead.
final class EncoderPool: Sendable {
    private let make: @Sendable () throws -> any StreamEncoder
    private let idle = Mutex<[PooledEncoder]>([])
    private let capacity: Int
    /// The coding this pool's encoders produce.
    let coding: ContentCoding
    /// The counters for this pool's coding.
    let metrics: CompressionMetrics

    init(
        coding: ContentCoding,
        configuration: CompressionConfiguration,
        capacity: Int = 32,
        make: @escaping @Sendable () throws -> any StreamEncoder
    ) throws {
        self.make = make
        self.coding = coding
        self.capacity = capacity
        self.metrics = CompressionMetrics(
            prefix: "strata_compression", messages: "responses", coding: coding,
            path: CompressionPath(streaming: coding),
            factory: configuration.metricsFactory)
        // Fail at construction, not on the first response, if the library refuses the settings.
        self.checkIn(try self.checkOut())
    }

    /// An encoder at the start of a new stream, owned by the caller until ``checkIn(_:)``.
    func checkOut() throws -> PooledEncoder {
        if let reused = self.idle.withLock({ $0.popLast() }) { return reused }
        return PooledEncoder(try self.make())
    }

    /// Returns an encoder whose stream ended (or was abandoned); it is reset for the next user.
    func checkIn(_ encoder: PooledEncoder) {
        guard encoder.encoder.reset() else { return }
        self.idle.withLock { idle in
            if idle.count < self.capacity { idle.append(encoder) }
        }
    }
}

/// An encoder handed from the pool to one response at a time.
///
/// `@unchecked Sendable`: the pool gives an encoder to exactly one checkout, the writer that
/// holds it uses it only from the task writing that response, and it is touched again only after
/// that writer checks it back in, through the pool's mutex (which orders the two uses).
final class PooledEncoder: @unchecked Sendable {
    let encoder: any StreamEncoder

    init(_ encoder: any StreamEncoder) {
        self.encoder = encoder
    }
}
