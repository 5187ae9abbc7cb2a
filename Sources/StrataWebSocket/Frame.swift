import NIOCore

/// A frame's opcode (RFC 6455 §5.2).
enum Opcode: UInt8 {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    var isControl: Bool { self.rawValue & 0x8 != 0 }
}

/// One frame read from a client, its payload unmasked.
struct Frame {
    var fin: Bool
    /// RSV1 (permessage-deflate's "compressed" bit).
    var rsv1: Bool
    var opcode: Opcode
    var payload: ByteBuffer
}

/// The client broke the protocol: the connection is failed with `code` (RFC 6455 §7.1.7).
struct ProtocolViolation: Error, CustomStringConvertible {
    let code: WebSocketCloseCode
    let reason: String
    var description: String { "\(self.reason) (close \(self.code.rawValue))" }
}

/// Cuts client frames out of the received bytes and unmasks them in place.
struct FrameParser {
    private var buffer = ByteBuffer()
    /// Frames whose payload is longer fail with 1009 as soon as their header is read.
    let maxFrameSize: Int
    /// Whether RSV1 may be set (permessage-deflate was negotiated).
    let allowsRSV1: Bool

    init(maxFrameSize: Int, allowsRSV1: Bool) {
        self.maxFrameSize = maxFrameSize
        self.allowsRSV1 = allowsRSV1
    }

    /// Adds received bytes.
    mutating func append(_ bytes: ByteBuffer) {
        if self.buffer.readableBytes == 0 {
            self.buffer = bytes
        } else {
            var bytes = bytes
            self.buffer.writeBuffer(&bytes)
        }
    }

    /// The next whole frame, or `nil` until more bytes arrive.
    mutating func next() throws(ProtocolViolation) -> Frame? {
        guard self.buffer.readableBytes >= 2,
            let first = self.buffer.getInteger(at: self.buffer.readerIndex, as: UInt8.self),
            let second = self.buffer.getInteger(at: self.buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        let fin = first & 0x80 != 0
        let rsv1 = first & 0x40 != 0
        guard first & 0x30 == 0, !rsv1 || self.allowsRSV1 else {
            throw ProtocolViolation(code: .protocolError, reason: "reserved bits set")
        }
        guard let opcode = Opcode(rawValue: first & 0x0F) else {
            throw ProtocolViolation(code: .protocolError, reason: "reserved opcode \(first & 0x0F)")
        }
        guard second & 0x80 != 0 else {
            throw ProtocolViolation(code: .protocolError, reason: "client frames must be masked")
        }
        var headerLength = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt16.self) else {
                return nil
            }
            length = Int(extended)
            headerLength = 4
        } else if length == 127 {
            guard let extended = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt64.self) else {
                return nil
            }
            guard extended >> 63 == 0 else {
                throw ProtocolViolation(code: .protocolError, reason: "frame length has its top bit set")
            }
            length = extended > UInt64(Int.max) ? Int.max : Int(extended)
            headerLength = 10
        }
        if opcode.isControl {
            guard fin else { throw ProtocolViolation(code: .protocolError, reason: "fragmented control frame") }
            guard length <= 125 else {
                throw ProtocolViolation(code: .protocolError, reason: "control frame longer than 125 bytes")
            }
            guard !rsv1 else { throw ProtocolViolation(code: .protocolError, reason: "RSV1 on a control frame") }
        }
        guard length <= self.maxFrameSize else {
            throw ProtocolViolation(
                code: .messageTooBig, reason: "frame of \(length) bytes exceeds \(self.maxFrameSize)")
        }
        guard let mask = self.buffer.getInteger(at: self.buffer.readerIndex + headerLength, as: UInt32.self),
            self.buffer.readableBytes - headerLength - 4 >= length
        else { return nil }
        self.buffer.moveReaderIndex(forwardBy: headerLength + 4)
        Self.unmask(&self.buffer, count: length, mask: mask)
        guard let payload = self.buffer.readSlice(length: length) else { return nil }
        if self.buffer.readableBytes == 0 { self.buffer = ByteBuffer() }
        return Frame(fin: fin, rsv1: rsv1, opcode: opcode, payload: payload)
    }

    /// XORs the next `count` readable bytes with the 4-byte mask (big-endian `mask`), eight
    /// bytes at a time.
    private static func unmask(_ buffer: inout ByteBuffer, count: Int, mask: UInt32) {
        guard count > 0 else { return }
        buffer.withUnsafeMutableReadableBytes { bytes in
            let maskBytes: (UInt8, UInt8, UInt8, UInt8) = (
                UInt8(truncatingIfNeeded: mask >> 24), UInt8(truncatingIfNeeded: mask >> 16),
                UInt8(truncatingIfNeeded: mask >> 8), UInt8(truncatingIfNeeded: mask)
            )
            // The mask as it lies in memory, repeated to eight bytes.
            var word: UInt64 = 0
            withUnsafeMutableBytes(of: &word) { raw in
                for i in 0..<8 {
                    raw[i] =
                        i % 4 == 0 ? maskBytes.0 : i % 4 == 1 ? maskBytes.1 : i % 4 == 2 ? maskBytes.2 : maskBytes.3
                }
            }
            var index = 0
            while index + 8 <= count {
                let value = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < count {
                let key: UInt8
                switch index % 4 {
                case 0: key = maskBytes.0
                case 1: key = maskBytes.1
                case 2: key = maskBytes.2
                default: key = maskBytes.3
                }
                bytes[index] ^= key
                index += 1
            }
        }
    }
}

/// Server frames: never masked (RFC 6455 §5.1).
enum FrameWriter {
    /// The header of a frame carrying `length` payload bytes.
    static func header(opcode: Opcode, fin: Bool, rsv1: Bool = false, length: Int) -> ByteBuffer {
        var header = ByteBuffer()
        header.reserveCapacity(10)
        header.writeInteger(UInt8((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue))
        if length < 126 {
            header.writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            header.writeInteger(UInt8(126))
            header.writeInteger(UInt16(length))
        } else {
            header.writeInteger(UInt8(127))
            header.writeInteger(UInt64(length))
        }
        return header
    }

    /// A whole control frame in one buffer.
    static func control(_ opcode: Opcode, payload: ByteBuffer) -> ByteBuffer {
        var frame = Self.header(opcode: opcode, fin: true, length: payload.readableBytes)
        var payload = payload
        frame.writeBuffer(&payload)
        return frame
    }

    /// The buffers of a data message cut into frames of at most `frameSize` bytes.
    static func message(
        _ opcode: Opcode, payload: ByteBuffer, frameSize: Int, rsv1: Bool = false
    ) -> [ByteBuffer] {
        var rest = payload
        if rest.readableBytes <= frameSize {
            // One frame; a small payload shares the header's buffer (one write, no second slice).
            var frame = Self.header(opcode: opcode, fin: true, rsv1: rsv1, length: rest.readableBytes)
            if rest.readableBytes <= 1024 {
                frame.writeBuffer(&rest)
                return [frame]
            }
            return [frame, rest]
        }
        var buffers: [ByteBuffer] = []
        var first = true
        while rest.readableBytes > 0 {
            let size = min(frameSize, rest.readableBytes)
            guard let slice = rest.readSlice(length: size) else { break }
            buffers.append(
                Self.header(
                    opcode: first ? opcode : .continuation, fin: rest.readableBytes == 0, rsv1: first && rsv1,
                    length: size))
            buffers.append(slice)
            first = false
        }
        return buffers
    }
}
