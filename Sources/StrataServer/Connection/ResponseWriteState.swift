import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Strata

/// One response's progress on the wire, shared by every copy of its root writer.
///
/// The head is held back until the first body chunk or the end, so a short streamed response
/// still goes out in one write.
final class ResponseWriteState {
    let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>
    let reader: ConnectionReader
    var pendingHead: HTTPResponseHead?
    let isHeadRequest: Bool
    let chunked: Bool
    let declaredLength: Int?
    private(set) var written = 0
    private(set) var finished = false

    init(
        outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>,
        reader: ConnectionReader,
        head: HTTPResponseHead,
        isHeadRequest: Bool,
        chunked: Bool,
        declaredLength: Int?
    ) {
        self.outbound = outbound
        self.reader = reader
        self.pendingHead = head
        self.isHeadRequest = isHeadRequest
        self.chunked = chunked
        self.declaredLength = declaredLength
    }

    /// The held-back head, marked `Connection: close` if the request body is stranded.
    private func takeHead() -> HTTPResponseHead? {
        guard var head = self.pendingHead else { return nil }
        self.pendingHead = nil
        if self.reader.mustCloseAfterResponse() {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        return head
    }

    /// Applies `update` to the held-back head's fields, keeping the framing fields as they are.
    func updateHeaderFields(_ update: (inout HTTPFields) -> Void) -> Bool {
        guard !self.finished, var head = self.pendingHead else { return false }
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        update(&fields)
        var headers = HTTPHeaders()
        for field in fields where !Self.framingFields.contains(field.name) {
            headers.add(name: field.name.rawName, value: field.value)
        }
        for (name, value) in head.headers where Self.framingNames.contains(where: { name.lowercased() == $0 }) {
            headers.add(name: name, value: value)
        }
        head.headers = headers
        self.pendingHead = head
        return true
    }

    private static let framingFields: [HTTPField.Name] = [.contentLength, .transferEncoding, .connection]
    private static let framingNames = ["content-length", "transfer-encoding", "connection"]

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
        let end = ServerOutboundPart.end(self.chunked ? trailers.map { HTTPHeaders($0) } : nil)
        if let head = self.takeHead() {
            try await self.outbound.write(contentsOf: [.head(head), end])
        } else {
            try await self.outbound.write(end)
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
