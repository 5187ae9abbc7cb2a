import HTTPTypes
import NIOCore
import Strata

/// HTTP/1.1 response encoding straight from `HTTPTypes`, for ``ServerCodec``.
///
/// A head is written in one pass over the handler's fields: nothing is converted to another
/// header type and no field is looked up or rewritten, so a field costs one copy of its bytes.
extension ByteBuffer {
    /// Writes the status line, the fields and the blank line of `head`.
    mutating func writeResponseHead(_ head: ResponseHead) {
        self.writeStatusLine(head.status)
        var sawDate = false
        var sawServer = false
        var sawConnection = false
        for field in head.fields {
            let name = field.name
            if name == .transferEncoding { continue }
            if name == .contentLength, !head.keepsContentLengthField { continue }
            if name == .connection {
                if head.replacesConnectionField { continue }
                sawConnection = true
            } else if name == .date {
                sawDate = true
            } else if name == .server {
                sawServer = true
            }
            self.writeString(name.rawName)
            self.writeStaticString(": ")
            field.withUnsafeBytesOfValue { self.writeBytes($0) }
            self.writeStaticString("\r\n")
        }
        if let length = head.contentLength {
            self.writeStaticString("Content-Length: ")
            self.writeDecimal(length)
            self.writeStaticString("\r\n")
        }
        if head.chunked { self.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if head.addsDate, !sawDate {
            self.writeStaticString("Date: ")
            self.writeString(HTTPDateCache.shared.current)
            self.writeStaticString("\r\n")
        }
        if let server = head.server, !sawServer {
            self.writeStaticString("Server: ")
            self.writeString(server)
            self.writeStaticString("\r\n")
        }
        // The handler's own `Connection` lines may carry the token already (rare: looked up only then).
        switch head.connection {
        case .close where !(sawConnection && head.fields.containsListElement("close", in: .connection)):
            self.writeStaticString("Connection: close\r\n")
        case .keepAlive where !(sawConnection && head.fields.containsListElement("keep-alive", in: .connection)):
            self.writeStaticString("Connection: keep-alive\r\n")
        default: break
        }
        self.writeStaticString("\r\n")
    }

    /// `HTTP/1.1 <code> <reason>\r\n`; the common statuses are one static copy.
    mutating func writeStatusLine(_ status: HTTPResponse.Status) {
        switch status.code {
        case 200 where status.reasonPhrase == "OK": self.writeStaticString("HTTP/1.1 200 OK\r\n")
        case 304 where status.reasonPhrase == "Not Modified": self.writeStaticString("HTTP/1.1 304 Not Modified\r\n")
        case 404 where status.reasonPhrase == "Not Found": self.writeStaticString("HTTP/1.1 404 Not Found\r\n")
        default:
            self.writeStaticString("HTTP/1.1 ")
            self.writeDecimal(status.code)
            self.writeStaticString(" ")
            self.writeString(status.reasonPhrase)
            self.writeStaticString("\r\n")
        }
    }

    /// The chunk-size line of a chunk of `size` bytes: hexadecimal, then CRLF.
    mutating func writeChunkSizeLine(_ size: Int) {
        var digits = 1
        while size >> (4 * digits) != 0 { digits += 1 }
        for position in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: size >> (4 * position)) & 0xF
            self.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
        self.writeStaticString("\r\n")
    }

    /// One chunk of a chunked body: its size line, its bytes, CRLF (`chunk` must not be empty).
    mutating func writeChunk(_ chunk: ByteBuffer) {
        self.writeChunkSizeLine(chunk.readableBytes)
        self.writeImmutableBuffer(chunk)
        self.writeStaticString("\r\n")
    }

    /// The last chunk of a chunked body, its trailer fields, and the blank line.
    mutating func writeLastChunk(trailers: HTTPFields?) {
        self.writeStaticString("0\r\n")
        for field in trailers ?? HTTPFields() {
            self.writeString(field.name.rawName)
            self.writeStaticString(": ")
            field.withUnsafeBytesOfValue { self.writeBytes($0) }
            self.writeStaticString("\r\n")
        }
        self.writeStaticString("\r\n")
    }

    /// A non-negative integer in decimal, without making a string.
    mutating func writeDecimal(_ value: Int) {
        guard value > 0 else {
            self.writeInteger(UInt8(ascii: "0"))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            self.writeInteger(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
