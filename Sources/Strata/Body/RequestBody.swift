public import NIOCore

/// A request body: a single-pass asynchronous sequence of byte buffers.
///
/// The server's body reads straight from the connection, so iterating slowly slows the client
/// down (back-pressure) and nothing is buffered beyond one read. Iterate it once; a second
/// iteration sees no more bytes.
///
/// ```swift
/// for try await chunk in request.body { try await writer.write(chunk) }
/// let whole = try await request.body.collect(upTo: 1 << 20)  // throws RequestBodyTooLargeError
/// ```
public struct RequestBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    @usableFromInline
    enum Storage: Sendable {
        case buffer(ByteBuffer)
        case stream(any AsyncSequence<ByteBuffer, any Error> & Sendable)
    }

    @usableFromInline
    let storage: Storage

    /// The body's length when the client declared it (`Content-Length`) or it is in memory.
    public let expectedLength: Int?

    /// An empty body.
    public static var empty: RequestBody { RequestBody(buffer: ByteBuffer()) }

    /// A body held in memory.
    @inlinable
    public init(buffer: ByteBuffer) {
        self.storage = .buffer(buffer)
        self.expectedLength = buffer.readableBytes
    }

    /// A body read from `stream`.
    ///
    /// - Parameters:
    ///   - stream: The chunks of the body, iterated once.
    ///   - expectedLength: The declared length, if known.
    public init<Stream: AsyncSequence & Sendable>(stream: Stream, expectedLength: Int? = nil)
    where Stream.Element == ByteBuffer, Stream.Failure == any Error {
        self.storage = .stream(stream)
        self.expectedLength = expectedLength
    }

    /// A body read from `stream` whose iteration cannot fail.
    public init<Stream: AsyncSequence & Sendable>(stream: Stream, expectedLength: Int? = nil)
    where Stream.Element == ByteBuffer, Stream.Failure == Never {
        self.storage = .stream(NeverFailingStream(base: stream))
        self.expectedLength = expectedLength
    }

    /// The body's bytes when it is held in memory; `nil` for a streamed body.
    @inlinable
    public var buffer: ByteBuffer? {
        if case .buffer(let buffer) = self.storage { return buffer }
        return nil
    }

    /// The sequence a streamed body reads; `nil` for a body in memory.
    ///
    /// A host adapter uses it to recognise its own stream coming back from a middleware stack
    /// unchanged, so it can hand its framework the original body instead of a copy.
    public var underlyingStream: (any AsyncSequence<ByteBuffer, any Error> & Sendable)? {
        if case .stream(let stream) = self.storage { return stream }
        return nil
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch self.storage {
        case .buffer(let buffer): AsyncIterator(state: .buffer(buffer.readableBytes > 0 ? buffer : nil))
        case .stream(let stream): AsyncIterator(state: .stream(stream.makeAsyncIterator()))
        }
    }

    /// Reads the whole body into one buffer.
    ///
    /// - Parameter maxSize: The most bytes to accept.
    /// - Throws: ``RequestBodyTooLargeError`` as soon as more than `maxSize` bytes arrive (or are
    ///   declared), without reading the rest.
    public func collect(upTo maxSize: Int) async throws -> ByteBuffer {
        if let expectedLength, expectedLength > maxSize {
            throw RequestBodyTooLargeError(limit: maxSize)
        }
        if case .buffer(let buffer) = self.storage { return buffer }
        var iterator = self.makeAsyncIterator()
        guard var collected = try await iterator.next() else { return ByteBuffer() }
        guard collected.readableBytes <= maxSize else { throw RequestBodyTooLargeError(limit: maxSize) }
        while var chunk = try await iterator.next() {
            guard collected.readableBytes + chunk.readableBytes <= maxSize else {
                throw RequestBodyTooLargeError(limit: maxSize)
            }
            collected.writeBuffer(&chunk)
        }
        return collected
    }

    /// Iterates a ``RequestBody``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline
        enum State {
            case buffer(ByteBuffer?)
            case stream(any AsyncIteratorProtocol<ByteBuffer, any Error>)
        }

        @usableFromInline
        var state: State

        @usableFromInline
        init(state: State) {
            self.state = state
        }

        public mutating func next() async throws -> ByteBuffer? {
            switch self.state {
            case .buffer(let buffer):
                self.state = .buffer(nil)
                return buffer
            case .stream(var iterator):
                let chunk = try await iterator.next()
                self.state = .stream(iterator)
                return chunk
            }
        }
    }
}

/// Lifts a stream that cannot fail into one whose failure type is `any Error`.
struct NeverFailingStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Base.Element == ByteBuffer, Base.Failure == Never {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let base: Base

    func makeAsyncIterator() -> Iterator { Iterator(base: self.base.makeAsyncIterator()) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        mutating func next() async throws -> ByteBuffer? { await self.base.next(isolation: nil) }
    }
}
