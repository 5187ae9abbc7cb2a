import Logging
import NIOCore
import Strata
import Synchronization

/// Turns received bytes into messages: frames, reassembly, UTF-8, limits, and the control
/// frames the client sends meanwhile.
///
/// `@unchecked Sendable`: its mutable state is touched only inside ``next(_:)``, and `busy`
/// (an atomic exchange at entry, cleared at exit) makes a second concurrent caller throw instead
/// of entering, so at most one task is ever inside.
final class MessageReader: @unchecked Sendable {
    private var iterator: UpgradedConnection.Inbound.AsyncIterator
    private var parser: FrameParser
    private let maxMessageSize: Int
    /// The message being reassembled from fragments (inflated as it comes when compressed).
    private var partial: (opcode: Opcode, payload: ByteBuffer, utf8: UTF8Validator, compressed: Bool)?
    private let inflater: MessageInflater?
    private var ended = false
    private let busy = Atomic<Bool>(false)

    init(
        iterator: UpgradedConnection.Inbound.AsyncIterator,
        parser: FrameParser,
        maxMessageSize: Int,
        inflater: MessageInflater?
    ) {
        self.inflater = inflater
        self.iterator = iterator
        self.parser = parser
        self.maxMessageSize = maxMessageSize
    }

    /// The next data message, or `nil` once the connection closed.
    func next(_ socket: WebSocket) async throws -> WebSocketMessage? {
        guard !self.busy.exchange(true, ordering: .acquiring) else { throw WebSocketConcurrentReadError() }
        defer { self.busy.store(false, ordering: .releasing) }
        guard !self.ended else { return nil }
        do {
            while true {
                while let frame = try self.parser.next() {
                    socket.state.withLock { $0.lastHeard = .now }
                    if let outcome = try await self.handle(frame, socket: socket) {
                        switch outcome {
                        case .message(let message): return message
                        case .end:
                            self.ended = true
                            return nil
                        }
                    }
                }
                let bytes: ByteBuffer?
                do {
                    bytes = try await self.iterator.next()
                } catch {
                    bytes = nil
                }
                guard let bytes else {
                    // The client half-closed or went away without a close frame: an abnormal
                    // close (1006). Nothing more is sent, not even a close frame.
                    self.ended = true
                    let wasOpen = socket.state.withLock { state in
                        let wasOpen = state.closeReason == nil
                        if wasOpen {
                            state.closeReason = WebSocketCloseReason(
                                code: .abnormalClosure, reason: "", initiatedByServer: false)
                        }
                        state.abandoned = true
                        state.closeSent = true
                        return wasOpen
                    }
                    if wasOpen {
                        socket.logger.info("WebSocket client ended the connection without a close frame (1006)")
                    }
                    return nil
                }
                self.parser.append(bytes)
            }
        } catch let violation as ProtocolViolation {
            self.ended = true
            await socket.fail(violation)
            return nil
        }
    }

    private enum Outcome {
        case message(WebSocketMessage)
        case end
    }

    private func handle(_ frame: Frame, socket: WebSocket) async throws -> Outcome? {
        switch frame.opcode {
        case .ping:
            _ = try? await socket.write(.control(FrameWriter.control(.pong, payload: frame.payload)), size: 0)
            return nil
        case .pong:
            return nil
        case .close:
            return try await self.handleClose(frame.payload, socket: socket)
        case .text, .binary:
            guard self.partial == nil else {
                throw ProtocolViolation(code: .protocolError, reason: "new message before the last one ended")
            }
            var partial = (
                opcode: frame.opcode, payload: ByteBuffer(), utf8: UTF8Validator(), compressed: frame.rsv1
            )
            if !frame.rsv1 && frame.fin {
                // The common case: one uncompressed frame, its payload used as it is.
                try self.checkSize(frame.payload.readableBytes)
                if frame.opcode == .text {
                    try Self.validate(frame.payload, with: &partial.utf8)
                    guard partial.utf8.isComplete else {
                        throw ProtocolViolation(code: .invalidPayload, reason: "text ends inside a character")
                    }
                    return .message(.text(String(buffer: frame.payload)))
                }
                return .message(.binary(frame.payload))
            }
            try self.append(frame, to: &partial)
            return try self.complete(partial, fin: frame.fin)
        case .continuation:
            guard var partial = self.partial else {
                throw ProtocolViolation(code: .protocolError, reason: "continuation frame without a message")
            }
            guard !frame.rsv1 else {
                throw ProtocolViolation(code: .protocolError, reason: "RSV1 on a continuation frame")
            }
            self.partial = nil  // keeps `partial.payload` uniquely referenced while it grows
            try self.append(frame, to: &partial)
            return try self.complete(partial, fin: frame.fin)
        }
    }

    /// Adds a frame's payload (inflated if the message is compressed) and checks it.
    private func append(
        _ frame: Frame, to partial: inout (opcode: Opcode, payload: ByteBuffer, utf8: UTF8Validator, compressed: Bool)
    ) throws(ProtocolViolation) {
        let start = partial.payload.writerIndex
        if partial.compressed {
            guard let inflater = self.inflater else {
                throw ProtocolViolation(code: .protocolError, reason: "RSV1 without permessage-deflate")
            }
            try inflater.inflate(frame.payload, isLast: frame.fin, into: &partial.payload, limit: self.maxMessageSize)
        } else {
            try self.checkSize(partial.payload.readableBytes + frame.payload.readableBytes)
            var payload = frame.payload
            partial.payload.writeBuffer(&payload)
        }
        if partial.opcode == .text {
            let added = partial.payload.getSlice(at: start, length: partial.payload.writerIndex - start) ?? ByteBuffer()
            try Self.validate(added, with: &partial.utf8)
        }
    }

    /// The message when `fin` ends it; otherwise keeps it for the next frame.
    private func complete(
        _ partial: (opcode: Opcode, payload: ByteBuffer, utf8: UTF8Validator, compressed: Bool), fin: Bool
    ) throws(ProtocolViolation) -> Outcome? {
        guard fin else {
            self.partial = partial
            return nil
        }
        if partial.opcode == .text {
            guard partial.utf8.isComplete else {
                throw ProtocolViolation(code: .invalidPayload, reason: "text ends inside a character")
            }
            return .message(.text(String(buffer: partial.payload)))
        }
        return .message(.binary(partial.payload))
    }

    private func checkSize(_ size: Int) throws(ProtocolViolation) {
        guard size <= self.maxMessageSize else {
            throw ProtocolViolation(
                code: .messageTooBig, reason: "message of \(size)+ bytes exceeds \(self.maxMessageSize)")
        }
    }

    private static func validate(_ bytes: ByteBuffer, with validator: inout UTF8Validator) throws(ProtocolViolation) {
        let valid = bytes.withUnsafeReadableBytes { validator.feed($0) }
        guard valid else { throw ProtocolViolation(code: .invalidPayload, reason: "text is not valid UTF-8") }
    }

    /// A close frame from the client: validate it, answer it if the server has not closed yet,
    /// and end.
    private func handleClose(_ payload: ByteBuffer, socket: WebSocket) async throws -> Outcome {
        var payload = payload
        var code = WebSocketCloseCode.noStatusReceived
        var reason = ""
        if payload.readableBytes == 1 {
            throw ProtocolViolation(code: .protocolError, reason: "close frame with a 1-byte body")
        }
        if let raw = payload.readInteger(as: UInt16.self) {
            let received = WebSocketCloseCode(rawValue: raw)
            guard received.isSendable else {
                throw ProtocolViolation(code: .protocolError, reason: "close code \(raw) may not be sent")
            }
            guard payload.withUnsafeReadableBytes({ UTF8Validator.isValid($0) }) else {
                throw ProtocolViolation(code: .invalidPayload, reason: "close reason is not valid UTF-8")
            }
            code = received
            reason = String(buffer: payload)
        }
        socket.state.withLock { state in
            state.closeReceived = true
            if state.closeReason == nil {
                state.closeReason = WebSocketCloseReason(code: code, reason: reason, initiatedByServer: false)
            }
        }
        // Echo the code (RFC 6455 §5.5.1); an empty close is answered with 1000.
        await socket.close(code == .noStatusReceived ? .normalClosure : code)
        return .end
    }
}
