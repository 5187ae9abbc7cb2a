import CompressNIO
public import CoreMetrics
public import HTTPTypes
import Logging
import NIOCore
public import Strata

/// Inflates request bodies sent with `Content-Encoding: gzip` or `deflate` as they stream, with
/// limits that stop decompression bombs while memory stays bounded.
///
/// The handler reads the inflated body, in chunks of at most 64 KiB; `Content-Encoding` and
/// `Content-Length` are removed from the request. Past `maxInflatedSize` inflated bytes, or an
/// inflated/compressed ratio above `maxRatio` (enforced once `ratioGrace` bytes are inflated),
/// reading the body throws ``DecompressionLimitError`` (413). A corrupt or truncated stream, or
/// bytes after its end, throw a 400 error. A coding other than gzip and deflate (or more than
/// one) is answered 415 with `Accept-Encoding: gzip, deflate`.
///
/// ```swift
/// let stack = MiddlewareStack(BasicContext.self) { RequestDecompressionMiddleware<BasicContext>(maxInflatedSize: 1 << 20) }
/// ```
public struct RequestDecompressionMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// The most inflated bytes one body may produce.
    public let maxInflatedSize: Int
    /// The highest inflated/compressed ratio allowed.
    public let maxRatio: Int
    /// Inflated bytes allowed before the ratio is enforced (small bodies compress very well).
    public let ratioGrace: Int
    private let counters: DecompressionCounters

    /// Creates the middleware.
    ///
    /// - Parameters:
    ///   - maxInflatedSize: The most inflated bytes per body. Default 8 MiB.
    ///   - maxRatio: The highest inflated/compressed ratio. Default 100.
    ///   - ratioGrace: Bytes inflated before the ratio applies. Default 64 KiB.
    ///   - metricsFactory: Where the counters go; `nil` uses the process's `MetricsSystem`.
    /// - Throws: ``CompressionConfigurationError`` when a limit is not positive.
    public init(
        maxInflatedSize: Int = 8 * 1024 * 1024,
        maxRatio: Int = 100,
        ratioGrace: Int = 64 * 1024,
        metricsFactory: (any MetricsFactory)? = nil
    ) throws(CompressionConfigurationError) {
        var problems: [String] = []
        if maxInflatedSize < 1 { problems.append("maxInflatedSize must be positive") }
        if maxRatio < 1 { problems.append("maxRatio must be positive") }
        if ratioGrace < 0 { problems.append("ratioGrace must not be negative") }
        if !problems.isEmpty { throw CompressionConfigurationError(problems: problems) }
        self.maxInflatedSize = maxInflatedSize
        self.maxRatio = maxRatio
        self.ratioGrace = ratioGrace
        self.counters = DecompressionCounters(factory: metricsFactory)
    }

    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        let encodings = request.headerFields.listElements(.contentEncoding).filter {
            !$0.equalsIgnoringASCIICase("identity")
        }
        guard !encodings.isEmpty else { return try await next(request, context) }
        guard encodings.count == 1, let coding = ContentCoding(token: encodings[0]),
            coding == .gzip || coding == .deflate
        else {
            self.counters.rejectedCoding.increment()
            context.logger.info(
                "refused a request body coding",
                metadata: ["content-encoding": "\(encodings.joined(separator: ", "))"]
            )
            return ServerResponse(
                error: HTTPError(
                    .unsupportedMediaType,
                    headerFields: [.acceptEncoding: "gzip, deflate"],
                    message: "Unsupported Content-Encoding"
                )
            )
        }
        (coding == .gzip ? self.counters.gzip : self.counters.deflate).messages.increment()
        var request = request
        request.headerFields[.contentEncoding] = nil
        request.headerFields[.contentLength] = nil
        request.body = RequestBody(
            stream: InflatingStream(
                base: request.body,
                coding: coding,
                maxInflatedSize: self.maxInflatedSize,
                maxRatio: self.maxRatio,
                ratioGrace: self.ratioGrace,
                logger: context.logger,
                counters: self.counters
            )
        )
        return try await next(request, context)
    }
}

/// Inflated bytes went past a limit.
public struct DecompressionLimitError: HTTPResponseError, Sendable, CustomStringConvertible {
    /// Which limit.
    public let reason: String
    /// 413 Content Too Large.
    public var status: HTTPResponse.Status { .contentTooLarge }
    /// The connection closes: the rest of the body is not read.
    public var headerFields: HTTPFields { [.connection: "close"] }
    /// Says which limit was passed.
    public var publicMessage: String? { "Decompressed request body too large: \(self.reason)" }
    public var description: String { "decompression limit: \(self.reason)" }
}

/// The inflated body, produced in bounded chunks as the compressed one arrives.
struct InflatingStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error

    let base: RequestBody
    let coding: ContentCoding
    let maxInflatedSize: Int
    let maxRatio: Int
    let ratioGrace: Int
    let logger: Logger
    let counters: DecompressionCounters

    func makeAsyncIterator() -> Iterator {
        Iterator(stream: self, base: self.base.makeAsyncIterator())
    }

    struct Iterator: AsyncIteratorProtocol {
        static let chunkSize = 64 * 1024
        let stream: InflatingStream
        var base: RequestBody.AsyncIterator
        var decompressor: ZlibDecompressor?
        var pending = ByteBuffer()
        var compressedBytes = 0
        var inflatedBytes = 0
        var streamEnded = false
        var done = false
        let allocator = ByteBufferAllocator()

        init(stream: InflatingStream, base: RequestBody.AsyncIterator) {
            self.stream = stream
            self.base = base
        }

        mutating func next() async throws -> ByteBuffer? {
            if self.done { return nil }
            let decompressor = try self.makeDecompressor()
            while !self.streamEnded {
                if self.pending.readableBytes == 0 {
                    guard let chunk = try await self.base.next() else {
                        // The client's body ended: the zlib stream must have ended with it.
                        try self.requireStreamEnd(decompressor)
                        break
                    }
                    self.compressedBytes += chunk.readableBytes
                    self.stream.counters.bytesIn(self.stream.coding).increment(by: Int64(chunk.readableBytes))
                    self.pending = chunk
                    continue
                }
                var output = self.allocator.buffer(capacity: Self.chunkSize)
                do {
                    try decompressor.inflate(from: &self.pending, to: &output)
                    // zlib stops early only at the end of the stream; with input left over, it ended.
                    if self.pending.readableBytes > 0 { self.streamEnded = true }
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // The output is full; the rest comes on the next call.
                } catch {
                    throw self.corrupt(error)
                }
                try self.count(output.readableBytes)
                if output.readableBytes > 0 { return output }
            }
            if self.pending.readableBytes > 0 { throw self.trailing() }
            while let extra = try await self.base.next() {
                if extra.readableBytes > 0 { throw self.trailing() }
            }
            self.done = true
            return nil
        }

        private mutating func makeDecompressor() throws -> ZlibDecompressor {
            if let decompressor = self.decompressor { return decompressor }
            do {
                let decompressor = try ZlibDecompressor(algorithm: self.stream.coding == .gzip ? .gzip : .zlib)
                self.decompressor = decompressor
                return decompressor
            } catch {
                self.stream.logger.error("could not start zlib", metadata: ["error": "\(error)"])
                throw HTTPError(.internalServerError)
            }
        }

        /// Feeds zlib no input: a finished stream reports its end, an unfinished one wants more.
        private mutating func requireStreamEnd(_ decompressor: ZlibDecompressor) throws {
            var none = self.allocator.buffer(capacity: 16)
            var output = self.allocator.buffer(capacity: 16)
            do {
                try decompressor.inflate(from: &none, to: &output)
                self.streamEnded = true
            } catch {
                self.stream.counters.rejectedCorrupt.increment()
                self.stream.logger.info("compressed request body ended early")
                throw HTTPError(.badRequest, message: "Compressed request body ended early")
            }
        }

        private func corrupt(_ error: any Error) -> any Error {
            self.stream.counters.rejectedCorrupt.increment()
            self.stream.logger.info("corrupt compressed request body", metadata: ["error": "\(error)"])
            return HTTPError(.badRequest, message: "Corrupt compressed request body")
        }

        private func trailing() -> any Error {
            self.stream.counters.rejectedCorrupt.increment()
            self.stream.logger.info("bytes after the end of a compressed request body")
            return HTTPError(.badRequest, message: "Data after the end of the compressed request body")
        }

        private mutating func count(_ bytes: Int) throws {
            self.inflatedBytes += bytes
            self.stream.counters.bytesOut(self.stream.coding).increment(by: Int64(bytes))
            if self.inflatedBytes > self.stream.maxInflatedSize {
                self.stream.logger.info(
                    "request body inflated past the size limit",
                    metadata: ["limit": "\(self.stream.maxInflatedSize)"]
                )
                self.stream.counters.rejectedSize.increment()
                throw DecompressionLimitError(reason: "more than \(self.stream.maxInflatedSize) bytes")
            }
            if self.inflatedBytes > self.stream.ratioGrace,
                self.inflatedBytes > self.compressedBytes * self.stream.maxRatio
            {
                self.stream.logger.info(
                    "request body inflated past the ratio limit",
                    metadata: ["ratio": "\(self.stream.maxRatio)"]
                )
                self.stream.counters.rejectedRatio.increment()
                throw DecompressionLimitError(reason: "expansion ratio above \(self.stream.maxRatio)")
            }
        }
    }
}

/// The decompression middleware's counters, made once per middleware.
struct DecompressionCounters: Sendable {
    let gzip: CompressionMetrics
    let deflate: CompressionMetrics
    let rejectedSize: Counter
    let rejectedRatio: Counter
    let rejectedCorrupt: Counter
    let rejectedCoding: Counter

    init(factory: (any MetricsFactory)?) {
        self.gzip = CompressionMetrics(
            prefix: "strata_decompression", messages: "requests", coding: .gzip, factory: factory)
        self.deflate = CompressionMetrics(
            prefix: "strata_decompression", messages: "requests", coding: .deflate, factory: factory)
        self.rejectedSize = CompressionMetrics.rejected("size", factory: factory)
        self.rejectedRatio = CompressionMetrics.rejected("ratio", factory: factory)
        self.rejectedCorrupt = CompressionMetrics.rejected("corrupt", factory: factory)
        self.rejectedCoding = CompressionMetrics.rejected("coding", factory: factory)
    }

    func bytesIn(_ coding: ContentCoding) -> Counter { coding == .gzip ? self.gzip.bytesIn : self.deflate.bytesIn }
    func bytesOut(_ coding: ContentCoding) -> Counter { coding == .gzip ? self.gzip.bytesOut : self.deflate.bytesOut }
}
