import HTTPTypes
import NIOCore
import Strata

/// What the upstream connection hands the proxy, in order.
enum UpstreamPart {
    /// A response head: informational (1xx) heads may come before the final one.
    case head(HTTPResponse, ResponseMeta)
    case body(ByteBuffer)
    /// The end of the response, with its trailer fields.
    case end(HTTPFields?)
    /// Bytes after a `101 Switching Protocols`: the tunnel.
    case raw(ByteBuffer)
}

/// How a response's body is delimited, and whether its connection can carry another request.
struct ResponseMeta: Sendable {
    enum Framing: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }
    var framing: Framing
    /// The upstream said `Connection: close`, answered with HTTP/1.0 without keep-alive, or
    /// delimited the body by closing.
    var closeAfter: Bool
    /// The fields the upstream named in `Connection` (lowercased), other than `close`,
    /// `keep-alive` and `upgrade`: hop-by-hop too, still in the head for the proxy to remove.
    var namedInConnection: [String] = []

    /// Removes the fields `Connection` named from a head this parser read.
    func removeNamedInConnection(from fields: inout HTTPFields) {
        guard !self.namedInConnection.isEmpty else { return }
        fields.removeAll { self.namedInConnection.contains($0.name.canonicalName) }
    }
}

/// Why an upstream response was refused. The connection it came on is closed, never reused.
struct UpstreamProtocolError: Error, CustomStringConvertible {
    enum Kind: String, Sendable {
        case malformedStatusLine = "malformed status line"
        case malformedHeader = "malformed header field"
        case headTooLarge = "response head too large"
        case tooManyFields = "too many header fields"
        case conflictingFraming = "both Content-Length and Transfer-Encoding"
        case invalidContentLength = "invalid or conflicting Content-Length"
        case unsupportedTransferEncoding = "unsupported Transfer-Encoding"
        case malformedChunk = "malformed chunked body"
        case unsolicited = "bytes with no request outstanding"
        case closedEarly = "connection closed before the response ended"
        case badUpgrade = "101 without a matching Upgrade"
        case unsupportedVersion = "unsupported HTTP version"
    }
    var kind: Kind
    var description: String { "upstream protocol error: \(self.kind.rawValue)" }
}

/// Limits on what an upstream may send in a response head.
struct ResponseParserLimits: Sendable {
    var maxHeadSize = 64 * 1024
    var maxFieldCount = 256
    var maxChunkLineSize = 4096
}

/// A strict, incremental HTTP/1.1 response parser (RFC 9112).
///
/// Nothing ambiguous passes: `Content-Length` with `Transfer-Encoding`, differing lengths, a
/// transfer coding other than `chunked`, a space before a colon, folded lines, bare LF or CR, bad
/// chunk sizes. Each is an ``UpstreamProtocolError``, and the connection is closed.
struct ResponseParser {
    enum State {
        /// Waiting for a response head.
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case raw
        /// The response ended; bytes before the next request are a protocol error.
        case idle
    }

    private(set) var state: State = .idle
    private static let hostField = HTTPField.Name("Host")!
    let limits: ResponseParserLimits
    /// The request being answered was `HEAD`: its response has no body whatever it declares.
    private var requestIsHead = false
    private var requestUpgrades = false
    private var trailerFields = HTTPFields()
    private var trailerBytes = 0

    init(limits: ResponseParserLimits) {
        self.limits = limits
    }

    /// A request went out: the next bytes are its response.
    mutating func expectResponse(isHead: Bool, upgrades: Bool) {
        self.requestIsHead = isHead
        self.requestUpgrades = upgrades
        self.state = .head
    }

    var isIdle: Bool {
        if case .idle = self.state { return true }
        return false
    }

    var isRaw: Bool {
        if case .raw = self.state { return true }
        return false
    }

    /// Parses what it can of `buffer`, appending parts to `out`. Leaves an incomplete line or
    /// head in `buffer` for the next read.
    mutating func parse(_ buffer: inout ByteBuffer, into out: inout CircularBuffer<UpstreamPart>) throws {
        while buffer.readableBytes > 0 {
            switch self.state {
            case .idle:
                throw UpstreamProtocolError(kind: .unsolicited)
            case .raw:
                out.append(.raw(buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()))
            case .untilClose:
                out.append(.body(buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()))
            case .head:
                guard let end = try Self.headEnd(buffer) else {
                    if buffer.readableBytes > self.limits.maxHeadSize {
                        throw UpstreamProtocolError(kind: .headTooLarge)
                    }
                    return
                }
                guard end <= self.limits.maxHeadSize else { throw UpstreamProtocolError(kind: .headTooLarge) }
                let headBytes = buffer.readSlice(length: end) ?? ByteBuffer()
                let (response, meta) = try self.parseHead(headBytes)
                out.append(.head(response, meta))
                if (100..<200).contains(response.status.code) {
                    if response.status.code == 101 {
                        guard self.requestUpgrades else { throw UpstreamProtocolError(kind: .badUpgrade) }
                        self.state = .raw
                    } else {
                        self.state = .head
                    }
                    continue
                }
                switch meta.framing {
                case .none:
                    out.append(.end(nil))
                    self.state = .idle
                case .length(let length):
                    self.state = .fixed(remaining: length)
                case .chunked:
                    self.state = .chunkSize
                case .untilClose:
                    self.state = .untilClose
                }
            case .fixed(let remaining):
                let count = min(remaining, buffer.readableBytes)
                out.append(.body(buffer.readSlice(length: count) ?? ByteBuffer()))
                if count == remaining {
                    out.append(.end(nil))
                    self.state = .idle
                } else {
                    self.state = .fixed(remaining: remaining - count)
                }
            case .chunkSize:
                guard let line = try self.readLine(&buffer, limit: self.limits.maxChunkLineSize) else { return }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    self.trailerFields = HTTPFields()
                    self.trailerBytes = 0
                    self.state = .trailers
                } else {
                    self.state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let count = min(remaining, buffer.readableBytes)
                out.append(.body(buffer.readSlice(length: count) ?? ByteBuffer()))
                self.state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                    throw UpstreamProtocolError(kind: .malformedChunk)
                }
                self.state = .chunkSize
            case .trailers:
                guard let line = try self.readLine(&buffer, limit: self.limits.maxHeadSize) else { return }
                if line.readableBytes == 0 {
                    out.append(.end(self.trailerFields.isEmpty ? nil : self.trailerFields))
                    self.state = .idle
                    continue
                }
                self.trailerBytes += line.readableBytes
                guard self.trailerBytes <= self.limits.maxHeadSize, self.trailerFields.count < self.limits.maxFieldCount
                else { throw UpstreamProtocolError(kind: .headTooLarge) }
                let field = try Self.parseField(line)
                // Framing and routing fields are not allowed in trailers (RFC 9110 §6.5.1).
                if ![.contentLength, .transferEncoding, .connection, Self.hostField].contains(field.name) {
                    self.trailerFields.append(field)
                }
            }
        }
    }

    /// The connection reached its end: completes a body delimited by closing.
    mutating func endOfInput(into out: inout CircularBuffer<UpstreamPart>) throws {
        switch self.state {
        case .idle, .raw:
            return
        case .untilClose:
            out.append(.end(nil))
            self.state = .idle
        default:
            throw UpstreamProtocolError(kind: .closedEarly)
        }
    }

    // MARK: - Lines and heads

    /// The length of the head up to and including its blank line, or `nil` when incomplete.
    ///
    /// - Throws: at the first LF without its CR: a bare LF never ends a line here.
    private static func headEnd(_ buffer: ByteBuffer) throws -> Int? {
        let view = buffer.readableBytesView
        var index = view.startIndex
        while let lf = view[index...].firstIndex(of: 0x0A) {
            guard lf > view.startIndex, view[lf - 1] == 0x0D else {
                throw UpstreamProtocolError(kind: .malformedHeader)
            }
            // A head ends with CRLF CRLF.
            if lf - view.startIndex >= 3, view[lf - 2] == 0x0A, view[lf - 3] == 0x0D {
                return lf - view.startIndex + 1
            }
            index = lf + 1
        }
        return nil
    }

    /// Reads one CRLF-terminated line, without its CRLF.
    private func readLine(_ buffer: inout ByteBuffer, limit: Int) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > limit { throw UpstreamProtocolError(kind: .malformedChunk) }
            return nil
        }
        let length = lf - view.startIndex
        guard length >= 1, view[lf - 1] == 0x0D, length <= limit + 1 else {
            throw UpstreamProtocolError(kind: .malformedChunk)
        }
        let line = buffer.readSlice(length: length - 1) ?? ByteBuffer()
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// `chunk-size [ chunk-ext ]`: hexadecimal, at most 15 digits, extensions skipped.
    private static func chunkSize(_ line: ByteBuffer) throws -> Int {
        var size = 0
        var digits = 0
        var sawExtension = false
        for byte in line.readableBytesView {
            if sawExtension {
                guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else {
                    throw UpstreamProtocolError(kind: .malformedChunk)
                }
                continue
            }
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw UpstreamProtocolError(kind: .malformedChunk) }
                sawExtension = true
                continue
            default:
                throw UpstreamProtocolError(kind: .malformedChunk)
            }
            digits += 1
            guard digits <= 15 else { throw UpstreamProtocolError(kind: .malformedChunk) }
            size = size << 4 | value
        }
        guard digits > 0 else { throw UpstreamProtocolError(kind: .malformedChunk) }
        return size
    }

    private func parseHead(_ head: ByteBuffer) throws -> (HTTPResponse, ResponseMeta) {
        try head.withUnsafeReadableBytes { bytes in try self.parseHead(bytes) }
    }

    /// Parses a whole head (its CRLF line ends were checked by ``headEnd(_:)``) straight from its
    /// bytes: one string for each name and value, nothing else allocated per field.
    private func parseHead(_ bytes: UnsafeRawBufferPointer) throws -> (HTTPResponse, ResponseMeta) {
        var cursor = 0
        func nextLine() throws -> Range<Int> {
            var index = cursor
            while index < bytes.count && bytes[index] != 0x0A { index += 1 }
            guard index < bytes.count, index > cursor, bytes[index - 1] == 0x0D else {
                throw UpstreamProtocolError(kind: .malformedHeader)
            }
            let line = cursor..<(index - 1)
            cursor = index + 1
            return line
        }
        let (status, isHTTP10) = try Self.parseStatusLine(UnsafeRawBufferPointer(rebasing: bytes[try nextLine()]))
        var fields = HTTPFields()
        fields.reserveCapacity(12)
        var contentLength: Int?
        var transferEncodings = 0
        var chunkedOnly = true
        var sawTransferEncoding = false
        var close = isHTTP10
        var keepAlive = false
        var closeToken = false
        var namedInConnection: [String] = []
        // The proxy relays what is left of the head: the hop-by-hop fields (RFC 9110 §7.6.1) are
        // never stored, nor is a body's `Content-Length` (the proxy frames the body afresh). A
        // `101` keeps all of them: the upgrade is checked against them first.
        let code = status.code
        let keepsAll = code == 101
        let keepsLength = self.requestIsHead || code == 204 || code == 304
        var count = 0
        while true {
            let range = try nextLine()
            if range.isEmpty { break }
            count += 1
            guard count <= self.limits.maxFieldCount else { throw UpstreamProtocolError(kind: .tooManyFields) }
            let line = UnsafeRawBufferPointer(rebasing: bytes[range])
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                throw UpstreamProtocolError(kind: .malformedHeader)
            }
            let value = try Self.fieldValue(line, after: colon)
            let name = try Self.fieldName(UnsafeRawBufferPointer(rebasing: line[0..<colon]))
            switch name {
            case .contentLength:
                for element in Self.listElements(value, allowEmpty: true) {
                    guard !element.isEmpty, element.count <= 18 else {
                        throw UpstreamProtocolError(kind: .invalidContentLength)
                    }
                    var number = 0
                    for byte in element {
                        guard byte >= 48 && byte <= 57 else { throw UpstreamProtocolError(kind: .invalidContentLength) }
                        number = number * 10 + Int(byte - 48)
                    }
                    if let contentLength, contentLength != number {
                        throw UpstreamProtocolError(kind: .invalidContentLength)
                    }
                    contentLength = number
                }
            case .transferEncoding:
                sawTransferEncoding = true
                for element in Self.listElements(value, allowEmpty: false) {
                    transferEncodings += 1
                    if !Self.equalsIgnoringCase(element, "chunked") { chunkedOnly = false }
                }
            case .connection:
                for element in Self.listElements(value, allowEmpty: false) {
                    if Self.equalsIgnoringCase(element, "close") {
                        closeToken = true
                    } else if Self.equalsIgnoringCase(element, "keep-alive") {
                        keepAlive = true
                    } else if !Self.equalsIgnoringCase(element, "upgrade") {
                        namedInConnection.append(String(decoding: element, as: UTF8.self).lowercased())
                    }
                }
            default:
                break
            }
            if keepsAll || (!HeaderRules.isHopByHop(name) && (keepsLength || name != .contentLength)) {
                fields.append(HTTPField(name: name, value: value))
            }
        }
        if closeToken { close = true } else if isHTTP10 && keepAlive { close = false }
        let framing: ResponseMeta.Framing
        if sawTransferEncoding && contentLength != nil {
            throw UpstreamProtocolError(kind: .conflictingFraming)
        }
        if self.requestIsHead || (100..<200).contains(code) || code == 204 || code == 304 {
            framing = .none
        } else if sawTransferEncoding {
            guard transferEncodings == 1, chunkedOnly, !isHTTP10 else {
                throw UpstreamProtocolError(kind: .unsupportedTransferEncoding)
            }
            framing = .chunked
        } else if let contentLength {
            framing = contentLength == 0 ? .none : .length(contentLength)
        } else {
            framing = .untilClose
            close = true
        }
        if code == 101 { close = true }
        var response = HTTPResponse(status: status)
        response.headerFields = fields
        return (response, ResponseMeta(framing: framing, closeAfter: close, namedInConnection: namedInConnection))
    }

    /// The value after a field line's colon, OWS trimmed; control characters are refused.
    private static func fieldValue(_ line: UnsafeRawBufferPointer, after colon: Int) throws -> UnsafeRawBufferPointer {
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        for byte in value where byte != 0x09 && (byte < 0x20 || byte == 0x7F) {
            throw UpstreamProtocolError(kind: .malformedHeader)
        }
        return value
    }

    /// The elements of a comma-separated list, trimmed of OWS.
    private static func listElements(_ value: UnsafeRawBufferPointer, allowEmpty: Bool) -> [UnsafeRawBufferPointer] {
        var elements: [UnsafeRawBufferPointer] = []
        var start = 0
        for index in 0...value.count where index == value.count || value[index] == UInt8(ascii: ",") {
            var low = start
            var high = index
            while low < high, value[low] == 0x20 || value[low] == 0x09 { low += 1 }
            while high > low, value[high - 1] == 0x20 || value[high - 1] == 0x09 { high -= 1 }
            if low < high || allowEmpty { elements.append(UnsafeRawBufferPointer(rebasing: value[low..<high])) }
            start = index + 1
        }
        return elements
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for index in 0..<bytes.count {
            var byte = bytes[index]
            if byte >= 65 && byte <= 90 { byte |= 0x20 }
            if byte != expected[index] { return false }
        }
        return true
    }

    /// The field name for `bytes`, which must be a token; registered names are reused.
    private static func fieldName(_ bytes: UnsafeRawBufferPointer) throws -> HTTPField.Name {
        for byte in bytes where !byte.isHTTPTokenByte { throw UpstreamProtocolError(kind: .malformedHeader) }
        for (text, name) in Self.commonNames where Self.equalsIgnoringCase(bytes, text) { return name }
        guard let name = HTTPField.Name(String(decoding: bytes, as: UTF8.self)) else {
            throw UpstreamProtocolError(kind: .malformedHeader)
        }
        return name
    }

    private static let commonNames: [(StaticString, HTTPField.Name)] = [
        ("content-length", .contentLength), ("content-type", .contentType), ("date", .date), ("server", .server),
        ("connection", .connection), ("transfer-encoding", .transferEncoding), ("etag", .eTag),
        ("last-modified", .lastModified), ("accept-ranges", .acceptRanges), ("cache-control", .cacheControl),
        ("vary", .vary), ("content-encoding", .contentEncoding), ("set-cookie", .setCookie), ("location", .location),
        ("expires", .expires),
    ]

    /// `HTTP/1.x SP 3DIGIT SP [ reason-phrase ]`.
    private static func parseStatusLine(_ bytes: UnsafeRawBufferPointer) throws -> (HTTPResponse.Status, Bool) {
        guard bytes.count >= 12, bytes[0..<7].elementsEqual("HTTP/1.".utf8), bytes[8] == 0x20 else {
            if bytes.count >= 5, bytes[0..<5].elementsEqual("HTTP/".utf8) {
                throw UpstreamProtocolError(kind: .unsupportedVersion)
            }
            throw UpstreamProtocolError(kind: .malformedStatusLine)
        }
        let isHTTP10: Bool
        switch bytes[7] {
        case UInt8(ascii: "0"): isHTTP10 = true
        case UInt8(ascii: "1"): isHTTP10 = false
        default: throw UpstreamProtocolError(kind: .unsupportedVersion)
        }
        var code = 0
        for byte in bytes[9..<12] {
            guard byte >= 48 && byte <= 57 else { throw UpstreamProtocolError(kind: .malformedStatusLine) }
            code = code * 10 + Int(byte - 48)
        }
        guard code >= 100 else { throw UpstreamProtocolError(kind: .malformedStatusLine) }
        var reason = ""
        if bytes.count > 12 {
            guard bytes[12] == 0x20 else { throw UpstreamProtocolError(kind: .malformedStatusLine) }
            let phrase = UnsafeRawBufferPointer(rebasing: bytes[13...])
            for byte in phrase where byte != 0x09 && (byte < 0x20 || byte == 0x7F) {
                throw UpstreamProtocolError(kind: .malformedStatusLine)
            }
            reason = String(decoding: phrase, as: UTF8.self)
        }
        return (HTTPResponse.Status(code: code, reasonPhrase: reason), isHTTP10)
    }

    /// `field-name ":" OWS field-value OWS` (a trailer line), a token name with no space
    /// before the colon.
    static func parseField(_ line: ByteBuffer) throws -> HTTPField {
        try line.withUnsafeReadableBytes { line in
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                throw UpstreamProtocolError(kind: .malformedHeader)
            }
            let value = try Self.fieldValue(line, after: colon)
            return HTTPField(name: try Self.fieldName(UnsafeRawBufferPointer(rebasing: line[0..<colon])), value: value)
        }
    }
}
