import HTTPTypes
import NIOCore
import Strata

/// Writes a response body to the client and keeps a copy for the store, up to a size cap.
///
/// A client that goes away does not stop the copy: the origin's body is still read to its end
/// (while it fits the cap) so a complete response is stored; the client's error is reported
/// afterwards. A body over the cap is passed through and not stored. A header change made by
/// a transform inside the cache (compression dropping `Content-Encoding`) is applied to the
/// stored copy too, when the client's head took it.
struct CacheTeeWriter: ResponseBodyWriter {
    private var parent: any ResponseBodyWriter
    private var entry: CachedResponse
    private let limit: Int
    /// The copy so far; `nil` once it went over the cap.
    private var collected: ByteBuffer?
    /// The error writing to the client, once it failed.
    private(set) var clientError: (any Error)?
    private(set) var finished = false
    /// Whether a transform changed the fields after the entry was prepared from them.
    private(set) var fieldsChanged = false

    init(parent: any ResponseBodyWriter, entry: CachedResponse, limit: Int, expectedLength: Int?) {
        self.parent = parent
        self.entry = entry
        self.limit = limit
        var buffer = ByteBuffer()
        if let expectedLength, expectedLength <= limit { buffer.reserveCapacity(expectedLength) }
        self.collected = buffer
    }

    /// The stored copy, once the body finished within the cap.
    var completedEntry: CachedResponse? {
        guard self.finished, let collected = self.collected else { return nil }
        var entry = self.entry
        entry.body = HTTPCache.compacted(collected)
        entry.bodyLength = collected.readableBytes
        return entry
    }

    // `@concurrent`, as `ResponseBodyWriter` (a module without nonisolated(nonsending) by
    // default) declares its requirements: the writer wrapped here is not `Sendable`.
    @concurrent mutating func write(_ buffer: ByteBuffer) async throws {
        if let kept = self.collected?.readableBytes {
            if kept + buffer.readableBytes > self.limit {
                self.collected = nil
            } else {
                self.collected?.writeImmutableBuffer(buffer)
            }
        }
        if self.clientError == nil {
            do {
                try await self.parent.write(buffer)
            } catch {
                self.clientError = error
            }
        }
        // Nobody reads it and it will not be stored: stop reading the origin.
        if let clientError = self.clientError, self.collected == nil { throw clientError }
    }

    @concurrent mutating func flush() async throws {
        guard self.clientError == nil else { return }
        do {
            try await self.parent.flush()
        } catch {
            self.clientError = error
        }
    }

    @concurrent mutating func finish(trailers: HTTPFields?) async throws {
        guard !self.finished else { return }
        self.finished = true
        guard self.clientError == nil else { return }
        do {
            try await self.parent.finish(trailers: trailers)
        } catch {
            self.clientError = error
        }
    }

    mutating func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        guard self.parent.updateHeaderFields(update) else { return false }
        update(&self.entry.headerFields)
        self.fieldsChanged = true
        return true
    }
}
