public import HTTPTypes
public import NIOCore

/// Where a response body is written: the connection, or a middleware's transform in front of it.
///
/// Each `write` returns once the bytes are accepted, which is how a slow client slows the writer
/// (back-pressure). A transforming middleware (compression, a cache tee) implements this protocol
/// around the writer it is given.
public protocol ResponseBodyWriter {
    /// Writes one chunk of the body.
    mutating func write(_ buffer: ByteBuffer) async throws
    /// Sends what this writer holds back, for streams whose chunks must arrive at once (events).
    mutating func flush() async throws
    /// Ends the body, with optional trailer fields. Calling it again does nothing; the server
    /// calls it when the body's closure returns.
    mutating func finish(trailers: HTTPFields?) async throws
    /// Changes the response's header fields, if none of the response has been sent yet.
    ///
    /// A transform uses it to take back a decision made before it saw the body (compression of a
    /// stream that turned out to be short drops its `Content-Encoding`). The server holds the head
    /// back until the first body byte, so this works until then. The framing fields
    /// (`Content-Length`, `Transfer-Encoding`, `Connection`) stay the server's: changes to them
    /// are ignored. A writer that wraps another forwards the call to it.
    ///
    /// - Returns: `true` when the change will be sent; `false` once the head has gone out, or when
    ///   the host sends heads before bodies (the default).
    mutating func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool
}

extension ResponseBodyWriter {
    /// Does nothing: a writer that holds nothing back has nothing to flush.
    public mutating func flush() async throws {}

    /// Refuses: a writer that does not forward the call cannot change a head.
    public mutating func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool { false }

    /// Writes several chunks in order.
    public mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        for buffer in buffers { try await self.write(buffer) }
    }
}

/// A response body: nothing, bytes in memory, or a closure that pushes chunks to a writer.
///
/// ```swift
/// ResponseBody(string: "Hello")
/// ResponseBody { writer in
///     for try await chunk in request.body { try await writer.write(chunk) }
/// }
/// ```
public struct ResponseBody: Sendable {
    /// The signature of a body that writes itself.
    public typealias WriteFunction = @Sendable (inout any ResponseBodyWriter) async throws -> Void

    @usableFromInline
    enum Storage: Sendable {
        case empty
        case buffer(ByteBuffer)
        case writer(WriteFunction)
        case opaque(any Sendable)
    }

    @usableFromInline
    var storage: Storage

    /// The body's length in bytes when it is known before writing; `nil` streams it.
    public var contentLength: Int?

    /// No body.
    public static var empty: ResponseBody { ResponseBody() }

    /// Creates an empty body.
    @inlinable
    public init() {
        self.storage = .empty
        self.contentLength = 0
    }

    /// A body held in memory.
    @inlinable
    public init(buffer: ByteBuffer) {
        self.storage = .buffer(buffer)
        self.contentLength = buffer.readableBytes
    }

    /// A UTF-8 text body.
    @inlinable
    public init(string: String) {
        self.init(buffer: ByteBuffer(string: string))
    }

    /// A body that writes itself when the response is sent.
    ///
    /// - Parameters:
    ///   - contentLength: The exact number of bytes `write` will write, if known.
    ///   - write: Writes the body. The body ends when it returns; call
    ///     ``ResponseBodyWriter/finish(trailers:)`` yourself only to send trailers.
    @inlinable
    public init(contentLength: Int? = nil, write: @escaping WriteFunction) {
        self.storage = .writer(write)
        self.contentLength = contentLength
    }

    /// A body only the host framework can send: it holds the host's own body value, which
    /// cannot be read in process.
    ///
    /// An adapter uses it for a body its framework keeps behind its API (a Vapor stream), so the
    /// body can pass through a Strata stack untouched and go back to the framework as it was.
    /// Transforming middlewares check ``isOpaque`` and leave such a body alone; writing it
    /// (``write(to:)``) throws ``OpaqueResponseBodyError``.
    ///
    /// - Parameters:
    ///   - value: The host's body, handed back through ``opaqueValue``.
    ///   - contentLength: The body's length, if the host knows it.
    public init(opaque value: some Sendable, contentLength: Int?) {
        self.storage = .opaque(value)
        self.contentLength = contentLength
    }

    /// Whether this body can only be sent by the host framework (see ``init(opaque:contentLength:)``).
    @inlinable
    public var isOpaque: Bool {
        if case .opaque = self.storage { return true }
        return false
    }

    /// The host's body value of an opaque body; `nil` for any other body.
    public var opaqueValue: (any Sendable)? {
        if case .opaque(let value) = self.storage { return value }
        return nil
    }

    /// A body that streams the chunks of `stream`.
    public init<Stream: AsyncSequence & Sendable>(stream: Stream, contentLength: Int? = nil)
    where Stream.Element == ByteBuffer {
        self.init(contentLength: contentLength) { writer in
            for try await chunk in stream { try await writer.write(chunk) }
        }
    }

    /// The body's bytes when it is held in memory; `nil` for a streamed body.
    @inlinable
    public var buffer: ByteBuffer? {
        switch self.storage {
        case .empty: ByteBuffer()
        case .buffer(let buffer): buffer
        case .writer, .opaque: nil
        }
    }

    /// Writes the body to `writer` without finishing it.
    ///
    /// - Throws: ``OpaqueResponseBodyError`` for an opaque body, whose bytes only its host can
    ///   read.
    @inlinable
    public func write(to writer: inout any ResponseBodyWriter) async throws {
        switch self.storage {
        case .empty: return
        case .buffer(let buffer): try await writer.write(buffer)
        case .writer(let write): try await write(&writer)
        case .opaque: throw OpaqueResponseBodyError()
        }
    }

    /// Returns this body written through a writer made by `makeWriter`, the way a transforming
    /// middleware (compression, a cache tee) wraps a body.
    ///
    /// The returned body creates one writer per response, writes this body through it, then
    /// finishes it (which must finish the writer it wraps).
    ///
    /// - Parameters:
    ///   - contentLength: The transformed body's length, if known.
    ///   - makeWriter: Makes the transform around the writer the response is written to.
    public func transformed<Writer: ResponseBodyWriter & SendableMetatype>(
        contentLength: Int?,
        _ makeWriter: @escaping @Sendable (any ResponseBodyWriter) throws -> Writer
    ) -> ResponseBody {
        let original = self
        return ResponseBody(contentLength: contentLength) { parent in
            var writer: any ResponseBodyWriter = try makeWriter(parent)
            try await original.write(to: &writer)
            try await writer.finish(trailers: nil)
        }
    }
}

/// Thrown when an opaque body (one only the host framework can send) is written in process.
///
/// A middleware that wraps or reads bodies should check ``ResponseBody/isOpaque`` first and leave
/// such a body untouched; the error means one did not, and the response is aborted rather than
/// sent without its body.
public struct OpaqueResponseBodyError: Error, CustomStringConvertible {
    @inlinable
    public init() {}

    public var description: String {
        "this response body belongs to the host framework (a stream it does not expose) and cannot be read or transformed in process"
    }
}
