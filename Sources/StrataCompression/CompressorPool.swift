import CompressNIO
import Synchronization

/// Keeps zlib compressors for reuse between responses.
///
/// A fresh deflate stream allocates about 270 KiB (window and hash tables); glibc serves that
/// with `mmap`, so a compressor per response costs system calls and page faults on every
/// response. A reset stream costs a memset of its hash table instead.
final class CompressorPool: Sendable {
    private let algorithm: ZlibAlgorithm
    private let configuration: ZlibConfiguration
    private let idle = Mutex<[PooledCompressor]>([])
    private let capacity: Int
    /// The counters for this pool's coding.
    let metrics: CompressionMetrics

    init(coding: ContentCoding, configuration: CompressionConfiguration, capacity: Int = 32) throws {
        var zlib = ZlibConfiguration()
        zlib.compressionLevel = Int32(configuration.level)
        zlib.memoryLevel = Int32(configuration.memoryLevel)
        zlib.windowSize = Int32(configuration.windowBits)
        self.algorithm = coding == .gzip ? .gzip : .zlib
        self.configuration = zlib
        self.capacity = capacity
        self.metrics = CompressionMetrics(
            prefix: "strata_compression", messages: "responses", coding: coding, factory: configuration.metricsFactory)
        // Fail at construction, not on the first response, if zlib refuses the settings.
        self.checkIn(try self.checkOut())
    }

    /// A compressor at the start of a new stream, owned by the caller until ``checkIn(_:)``.
    func checkOut() throws -> PooledCompressor {
        if let reused = self.idle.withLock({ $0.popLast() }) { return reused }
        return PooledCompressor(try ZlibCompressor(algorithm: self.algorithm, configuration: self.configuration))
    }

    /// Returns a compressor whose stream ended (or was abandoned); it is reset for the next user.
    func checkIn(_ compressor: PooledCompressor) {
        guard (try? compressor.zlib.reset()) != nil else { return }
        self.idle.withLock { idle in
            if idle.count < self.capacity { idle.append(compressor) }
        }
    }
}

/// A zlib stream handed from the pool to one response at a time.
///
/// `@unchecked Sendable`: the pool gives a compressor to exactly one checkout, the writer that
/// holds it uses it only from the task writing that response, and it is touched again only after
/// that writer checks it back in, through the pool's mutex (which orders the two uses).
final class PooledCompressor: @unchecked Sendable {
    let zlib: ZlibCompressor

    init(_ zlib: ZlibCompressor) {
        self.zlib = zlib
    }
}
