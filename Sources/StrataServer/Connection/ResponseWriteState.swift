import HTTPTypes
import NIOCore
import Strata

/// One response's progress on the wire, shared by every copy of its root writer.
///
/// The head is held back until the first body chunk or the end, so a short streamed response
/// still goes out in one write.
final class ResponseWriteState {
    let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>
    let reader: ConnectionReader
    var pendingHead: ResponseHead?
    let isHeadRequest: Bool
    let declaredLength: Int?
    private(set) var written = 0
    private(set) var finished = false

    init(
        outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>,
        reader: ConnectionReader,
        head: ResponseHead,
        isHeadRequest: Bool,
        declaredLength: Int?
    ) {
        self.outbound = outbound
        self.reader = reader
        self.pendingHead = head
        self.isHeadRequest = isHeadRequest
        self.declaredLength = declaredLength
    }

    /// The held-back head, marked `Connection: close` if the request body is stranded.
    private func takeHead() -> ResponseHead? {
        guard var head = self.pendingHead else { return nil }
        self.pendingHead = nil
        if self.reader.mustCloseAfterResponse() {
            head.connection = .close
            head.replacesConnectionField = true
        }
        return head
    }

    /// Applies `update` to the held-back head's fields, keeping the framing fields as they are.
    func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        guard !self.finished, var head = self.pendingHead else { return false }
        let framing = head.fields.filter { Self.framingFields.contains($0.name) }
        update(&head.fields)
        head.fields.removeAll { Self.framingFields.contains($0.name) }
        head.fields.append(contentsOf: framing)
        self.pendingHead = head
        return true
    }

    private static let framingFields: [HTTPField.Name] = [.contentLength, .transferEncoding, .connection]

    func write(_ buffer: ByteBuffer) async throws {
        guard !self.finished else { throw ResponseBodyFinishedError() }
        self.written += buffer.readableBytes
        if let declaredLength = self.declaredLength, self.written > declaredLength {
            throw ResponseBodyLengthError(declared: declaredLength, written: self.written)
        }
        if self.isHeadRequest || buffer.readableBytes == 0 {
            return
        }
        if let head = self.takeHead() {
            try await self.outbound.write(contentsOf: [.head(head), .body(buffer)])
        } else {
            try await self.outbound.write(.body(buffer))
        }
    }

    func finish(trailers: HTTPFields?) async throws {
        guard !self.finished else { return }
        self.finished = true
        if !self.isHeadRequest, let declaredLength = self.declaredLength, self.written != declaredLength {
            throw ResponseBodyLengthError(declared: declaredLength, written: self.written)
        }
        if let head = self.takeHead() {
            if head.chunked {
                try await self.outbound.write(contentsOf: [.head(head), .end(trailers)])
            } else {
                try await self.outbound.write(.whole(head, nil))
            }
        } else {
            try await self.outbound.write(.end(trailers))
        }
    }
}

/// The writer a response body's closure is given by the server.
struct RootResponseBodyWriter: ResponseBodyWriter {
    let state: ResponseWriteState

    func write(_ buffer: ByteBuffer) async throws {
        try await self.state.write(buffer)
    }

    func finish(trailers: HTTPFields?) async throws {
        try await self.state.finish(trailers: trailers)
    }

    func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        self.state.updateHeaderFields(update)
    }
}

/// A body was written after it was finished.
public struct ResponseBodyFinishedError: Error, CustomStringConvertible {
    public var description: String { "the response body was written after it finished" }
}

/// A body wrote a different number of bytes than its declared `contentLength`.
public struct ResponseBodyLengthError: Error, CustomStringConvertible {
    /// The declared length.
    public let declared: Int
    /// The bytes written when the mismatch was found.
    public let written: Int
    public var description: String { "response body declared \(self.declared) bytes but wrote \(self.written)" }
}
