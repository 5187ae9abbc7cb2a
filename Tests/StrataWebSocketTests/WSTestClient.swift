import Foundation
import NIOCore
import StrataTesting

/// A frame as a raw test client sees it.
struct TestFrame: Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    var fin: Bool
    var rsv: UInt8
    var opcode: UInt8
    var payload: [UInt8]

    var text: String { String(decoding: self.payload, as: UTF8.self) }
    var description: String {
        let preview = self.payload.count <= 32 ? "\(self.payload)" : "\(self.payload.count) bytes"
        return "frame(opcode \(self.opcode), fin \(self.fin), rsv \(self.rsv), \(preview))"
    }
    var debugDescription: String { self.description }
    /// The close code of a close frame, if it has one.
    var closeCode: UInt16? {
        guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
        return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
    }
}

/// A WebSocket client written for the conformance tests: it sends exactly the frames a test
/// asks for (masked, or broken on purpose) and reads the server's frames with deadlines.
final class WSTestClient {
    let connection: RawHTTPClient
    private var buffer = ByteBuffer()
    private(set) var handshakeResponse = ""
    private var closed = false

    private init(connection: RawHTTPClient) {
        self.connection = connection
    }

    /// Opens a connection, performs the handshake (which must succeed) and runs `body`.
    static func with<Result>(
        port: Int,
        path: String = "/echo",
        headers: [String] = [],
        pausing: Bool = false,
        _ body: (WSTestClient) async throws -> Result
    ) async throws -> Result {
        try await RawHTTPClient.withConnection(port: port) { connection in
            let client = WSTestClient(connection: connection)
            try await client.handshake(path: path, host: "127.0.0.1:\(port)", headers: headers)
            // A paused client reads nothing more until the test reads.
            if pausing { connection.pauseReading() }
            return try await body(client)
        }
    }

    private func handshake(path: String, host: String, headers: [String]) async throws {
        var request =
            "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for header in headers { request += header + "\r\n" }
        try await self.connection.send(request + "\r\n")
        while true {
            guard var chunk = try await self.connection.read(timeout: .seconds(10)) else {
                throw TestFailure("closed during the handshake: \(self.handshakeResponse)")
            }
            self.buffer.writeBuffer(&chunk)
            let text = String(buffer: self.buffer)
            if let end = text.range(of: "\r\n\r\n") {
                self.handshakeResponse = String(text[..<end.upperBound])
                self.buffer.moveReaderIndex(forwardBy: text[..<end.upperBound].utf8.count)
                guard self.handshakeResponse.hasPrefix("HTTP/1.1 101") else {
                    throw TestFailure("handshake refused: \(self.handshakeResponse)")
                }
                return
            }
        }
    }

    /// Sends one frame, masked unless `masked` is false.
    func send(
        opcode: UInt8, payload: [UInt8] = [], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true
    ) async throws {
        try await self.connection.send(
            bytes: Self.frame(opcode: opcode, payload: payload, fin: fin, rsv: rsv, masked: masked))
    }

    /// Sends the bytes of several frames in one write.
    func send(frames: [ByteBuffer]) async throws {
        var all = ByteBuffer()
        for var frame in frames { all.writeBuffer(&frame) }
        try await self.connection.send(bytes: all)
    }

    func sendText(_ text: String, fin: Bool = true) async throws {
        try await self.send(opcode: 0x1, payload: Array(text.utf8), fin: fin)
    }

    /// A masked client frame.
    static func frame(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true)
        -> ByteBuffer
    {
        var frame = ByteBuffer()
        frame.writeInteger(UInt8((fin ? 0x80 : 0) | (rsv << 4) | opcode))
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.writeInteger(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(maskBit | 126)
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(maskBit | 127)
            frame.writeInteger(UInt64(payload.count))
        }
        if masked {
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            frame.writeBytes(key)
            var masked = payload
            masked.withUnsafeMutableBufferPointer { bytes in
                for index in bytes.indices { bytes[index] ^= key[index & 3] }
            }
            frame.writeBytes(masked)
        } else {
            frame.writeBytes(payload)
        }
        return frame
    }

    /// The next frame from the server; `nil` when the server closed the TCP connection.
    func readFrame(timeout: Duration = .seconds(10)) async throws -> TestFrame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frame = try self.parse() { return frame }
            guard !self.closed else { return nil }
            guard var chunk = try await self.connection.read(timeout: deadline - .now) else {
                self.closed = true
                continue
            }
            self.buffer.writeBuffer(&chunk)
        }
    }

    /// Reads one data message, whatever its fragmentation; control frames before it are skipped.
    func readMessage(timeout: Duration = .seconds(10)) async throws -> (opcode: UInt8, payload: [UInt8], frames: Int)? {
        var opcode: UInt8?
        var payload: [UInt8] = []
        var frames = 0
        while let frame = try await self.readFrame(timeout: timeout) {
            if frame.opcode >= 0x8 {
                if frame.opcode == 0x8 { return nil }
                continue
            }
            opcode = opcode ?? frame.opcode
            payload += frame.payload
            frames += 1
            if frame.fin { return (opcode ?? 0, payload, frames) }
        }
        return nil
    }

    /// Reads frames until a close frame, answering nothing; returns the data frames seen before
    /// it and the close frame (or `nil` if the TCP connection ended without one).
    func readUntilClose(timeout: Duration = .seconds(10)) async throws -> (before: [TestFrame], close: TestFrame?) {
        var before: [TestFrame] = []
        while let frame = try await self.readFrame(timeout: timeout) {
            if frame.opcode == 0x8 { return (before, frame) }
            before.append(frame)
        }
        return (before, nil)
    }

    /// Whether the server closes the TCP connection within `timeout` (after any frames).
    func serverClosesConnection(timeout: Duration = .seconds(10)) async throws -> Bool {
        do {
            while try await self.readFrame(timeout: timeout) != nil {}
            return true
        } catch is RawHTTPClientTimeout {
            return false
        }
    }

    private func parse() throws -> TestFrame? {
        guard self.buffer.readableBytes >= 2,
            let first = self.buffer.getInteger(at: self.buffer.readerIndex, as: UInt8.self),
            let second = self.buffer.getInteger(at: self.buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        guard second & 0x80 == 0 else { throw TestFailure("the server masked a frame") }
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let value = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt16.self) else {
                return nil
            }
            length = Int(value)
            offset = 4
        } else if length == 127 {
            guard let value = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt64.self) else {
                return nil
            }
            length = Int(value)
            offset = 10
        }
        guard self.buffer.readableBytes >= offset + length else { return nil }
        self.buffer.moveReaderIndex(forwardBy: offset)
        let payload = self.buffer.readBytes(length: length) ?? []
        return TestFrame(fin: first & 0x80 != 0, rsv: (first >> 4) & 0x7, opcode: first & 0x0F, payload: payload)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
