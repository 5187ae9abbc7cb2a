import HTTPTypes
import NIOCore
import NIOHTTP1
import Strata
import Synchronization

/// The connection's inbound side, shared by the connection loop, the request body stream and
/// the upgraded-connection stream.
///
/// `@unchecked Sendable`: the inbound iterator and the body state are only touched inside
/// ``exclusive(_:)``, which enters by flipping `busy` from `false` to `true` (acquiring) and
/// leaves by storing `false` (releasing). A second task that tries to read at the same time gets
/// ``ConcurrentBodyReadError`` instead of a data race, and each entry sees every change made by
/// the previous one.
final class ConnectionReader: @unchecked Sendable {
    private let busy = Atomic<Bool>(false)
    private var iterator: NIOAsyncChannelInboundStream<ServerInboundPart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>

    /// Which request's body may be read; bumps when a request starts.
    private var currentRequest = 0
    private var body = BodyState()

    struct BodyState {
        var expected = false
        /// Whether the request's `.end` part was read (every request has one, body or not).
        var ended = true
        var bytes = 0
        var limit = 0
        var tooLarge = false
        var broken = false
        var expectsContinue = false
        var continueSent = false
    }

    init(
        iterator: NIOAsyncChannelInboundStream<ServerInboundPart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>
    ) {
        self.iterator = iterator
        self.outbound = outbound
    }

    private func exclusive<Result>(_ body: () async throws -> Result) async throws -> Result {
        guard self.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw ConcurrentBodyReadError()
        }
        defer { self.busy.store(false, ordering: .releasing) }
        return try await body()
    }

    /// The next part at the top level (a request head, or the end of the connection).
    func nextPart() async throws -> ServerInboundPart? {
        try await self.exclusive { try await self.iterator.next() }
    }

    /// Starts a request; returns the number its body stream must present.
    func beginRequest(_ info: RequestHeadInfo, limit: Int) async throws -> Int {
        try await self.exclusive {
            self.currentRequest &+= 1
            self.body = BodyState(
                expected: info.hasBody,
                ended: false,
                limit: limit,
                expectsContinue: info.expectsContinue
            )
            return self.currentRequest
        }
    }

    /// The next chunk of request `id`'s body.
    func nextBodyChunk(request id: Int) async throws -> ByteBuffer? {
        try await self.exclusive {
            guard id == self.currentRequest else { throw RequestBodyUnavailableError() }
            if self.body.ended { return nil }
            if self.body.tooLarge { throw RequestBodyTooLargeError(limit: self.body.limit) }
            if self.body.broken { throw HTTPError(.badRequest, message: "Malformed request body") }
            if self.body.expectsContinue && !self.body.continueSent {
                self.body.continueSent = true
                try await self.outbound.write(.head(ResponseHead(status: .continue)))
            }
            let part: ServerInboundPart?
            do {
                part = try await self.iterator.next()
            } catch {
                self.body.broken = true
                throw HTTPError(.badRequest, message: "Malformed request body")
            }
            switch part {
            case .body(let buffer):
                self.body.bytes += buffer.readableBytes
                if self.body.bytes > self.body.limit {
                    self.body.tooLarge = true
                    throw RequestBodyTooLargeError(limit: self.body.limit)
                }
                return buffer
            case .end:
                self.body.ended = true
                return nil
            case .none:
                self.body.broken = true
                throw ClientDisconnectedError()
            case .head, .invalid, .raw:
                self.body.broken = true
                throw HTTPError(.badRequest, message: "Malformed request body")
            }
        }
    }

    /// Reads and discards what is left of the current body so the next request can be read.
    ///
    /// - Returns: `false` when the connection cannot be reused: the body was broken or too large,
    ///   or the client is still waiting for a `100 Continue` it was never sent.
    func finishRequest() async -> Bool {
        do {
            return try await self.exclusive {
                self.currentRequest &+= 1
                if self.body.ended { return true }
                if self.body.broken || self.body.tooLarge { return false }
                if self.body.expectsContinue && !self.body.continueSent { return false }
                while true {
                    switch try await self.iterator.next() {
                    case .body(let buffer):
                        self.body.bytes += buffer.readableBytes
                        if self.body.bytes > self.body.limit { return false }
                    case .end:
                        self.body.ended = true
                        return true
                    case .none, .head, .invalid, .raw:
                        return false
                    }
                }
            }
        } catch {
            return false
        }
    }

    /// Whether the client may still be waiting to send a body it was never asked for
    /// (`Expect: 100-continue` unanswered): the connection must close after this response.
    /// Also `true` while another task is reading the body, since its outcome is unknown.
    func mustCloseAfterResponse() -> Bool {
        guard self.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return true
        }
        defer { self.busy.store(false, ordering: .releasing) }
        return self.body.expected && !self.body.ended && self.body.expectsContinue && !self.body.continueSent
    }

    /// The next bytes after a protocol upgrade.
    func nextRaw() async throws -> ByteBuffer? {
        try await self.exclusive {
            while let part = try await self.iterator.next() {
                if case .raw(let buffer) = part { return buffer }
            }
            return nil
        }
    }

    /// Reads what the client still sends, until it closes (or the connection is closed).
    func discardRemaining() async {
        _ = try? await self.exclusive {
            while try await self.iterator.next() != nil {}
        }
    }
}

/// The request body, read from the connection with back-pressure.
struct ServerRequestBodyStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error

    let reader: ConnectionReader
    let request: Int

    func makeAsyncIterator() -> Iterator { Iterator(reader: self.reader, request: self.request) }

    struct Iterator: AsyncIteratorProtocol {
        let reader: ConnectionReader
        let request: Int

        func next() async throws -> ByteBuffer? {
            try await self.reader.nextBodyChunk(request: self.request)
        }
    }
}

/// The bytes of an upgraded connection.
struct UpgradedInboundStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error

    let reader: ConnectionReader

    func makeAsyncIterator() -> Iterator { Iterator(reader: self.reader) }

    struct Iterator: AsyncIteratorProtocol {
        let reader: ConnectionReader
        func next() async throws -> ByteBuffer? { try await self.reader.nextRaw() }
    }
}

/// Writes raw bytes on an upgraded connection.
struct UpgradedOutboundWriter: UpgradedConnectionWriter {
    let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>

    func write(_ buffer: ByteBuffer) async throws {
        try await self.outbound.write(.raw(buffer))
    }

    func write(contentsOf buffers: [ByteBuffer]) async throws {
        try await self.outbound.write(contentsOf: buffers.map { .raw($0) })
    }

    func finish() {
        self.outbound.finish()
    }
}

/// Two tasks read the same request body at once.
public struct ConcurrentBodyReadError: Error, CustomStringConvertible {
    public var description: String { "the request body is already being read by another task" }
}

/// A request body was read after its response completed.
public struct RequestBodyUnavailableError: Error, CustomStringConvertible {
    public var description: String { "the request body can only be read until its response completes" }
}

/// The client closed the connection before the request body ended.
public struct ClientDisconnectedError: Error, CustomStringConvertible {
    public var description: String { "the client closed the connection before the request body ended" }
}
