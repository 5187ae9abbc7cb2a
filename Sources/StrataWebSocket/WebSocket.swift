public import HTTPTypes
public import Logging
public import NIOCore
import Strata
import Synchronization

/// A message: text (valid UTF-8, checked on receipt) or binary.
public enum WebSocketMessage: Sendable, Hashable {
    case text(String)
    case binary(ByteBuffer)
}

/// What became of a message given to ``WebSocket/send(_:)``.
public enum WebSocketSendResult: Sendable, Hashable {
    /// The connection accepted it.
    case sent
    /// The outbound queue was full and the policy is ``WebSocketConfiguration/SlowConsumerPolicy/dropMessage``.
    case dropped
}

/// A send on a connection that is closing or closed.
public struct WebSocketClosedError: Error, Sendable, CustomStringConvertible {
    public var description: String { "the WebSocket is closed" }
}

/// A send that would have exceeded ``WebSocketConfiguration/maxQueuedBytes`` under the
/// ``WebSocketConfiguration/SlowConsumerPolicy/close`` policy; the connection is closed with 1013.
public struct WebSocketSlowConsumerError: Error, Sendable, CustomStringConvertible {
    /// The bytes that were already waiting.
    public let queuedBytes: Int
    public var description: String { "the client reads too slowly: \(self.queuedBytes) bytes are waiting" }
}

/// One open WebSocket connection.
///
/// Read with `for try await message in socket.messages` — control frames (ping, pong, close)
/// are answered while you read, so keep reading for as long as the connection lives. Send from
/// any number of tasks at once: each message is written whole, its frames never interleaved with
/// another message's.
public final class WebSocket: Sendable {
    /// The handshake request.
    public let request: HTTPRequest
    /// The subprotocol agreed in the handshake.
    public let subprotocol: String?
    /// The connection's logger.
    public let logger: Logger

    let configuration: WebSocketConfiguration
    let outbound: any UpgradedConnectionWriter
    let reader: MessageReader
    let state: Mutex<State>
    let writeLock = WriteLock()

    struct State {
        /// The close frame is decided on (later sends fail) ...
        var closeSent = false
        /// ... and written (nothing may follow it).
        var closeWritten = false
        /// The close frame decided on but not written yet.
        var pendingClose: ByteBuffer?
        var closeReceived = false
        /// Set when the connection must end without waiting for the client (a protocol
        /// violation, a dead peer).
        var abandoned = false
        var closeReason: WebSocketCloseReason?
        var queuedBytes = 0
        var lastHeard: ContinuousClock.Instant
        var lastData: ContinuousClock.Instant
        var pingSentAt: ContinuousClock.Instant?
        var closeDeadline: ContinuousClock.Instant?
    }

    /// The outbound compressor, when permessage-deflate was agreed.
    let deflater: MessageDeflater?

    init(
        connection: UpgradedConnection,
        request: HTTPRequest,
        subprotocol: String?,
        configuration: WebSocketConfiguration,
        compression: (deflater: MessageDeflater, inflater: MessageInflater)? = nil
    ) {
        self.deflater = compression?.deflater
        self.request = request
        self.subprotocol = subprotocol
        self.logger = connection.logger
        self.configuration = configuration
        self.outbound = connection.outbound
        self.reader = MessageReader(
            iterator: connection.inbound.makeAsyncIterator(),
            parser: FrameParser(maxFrameSize: configuration.maxFrameSize, allowsRSV1: compression != nil),
            maxMessageSize: configuration.maxMessageSize,
            inflater: compression?.inflater
        )
        let now = ContinuousClock.now
        self.state = Mutex(State(lastHeard: now, lastData: now))
    }

    /// The messages the client sends, until the connection closes. Iterate it once.
    public var messages: Messages { Messages(socket: self) }

    /// How the connection ended; `nil` while it is open.
    public var closeReason: WebSocketCloseReason? { self.state.withLock { $0.closeReason } }

    /// Sends a message, cut into frames of ``WebSocketConfiguration/outboundFrameSize``, and
    /// compressed when permessage-deflate was agreed and the message is at least
    /// ``PerMessageDeflate/minimumSize`` bytes, unless `sensitive`.
    ///
    /// - Parameters:
    ///   - message: The message.
    ///   - sensitive: Never compress this message: a secret compressed in one context with
    ///     attacker-chosen text leaks through the compressed length (CRIME).
    /// - Returns: ``WebSocketSendResult/dropped`` when the queue is full and the policy drops.
    /// - Throws: ``WebSocketClosedError`` after the close started; ``WebSocketSlowConsumerError``
    ///   when the queue is full and the policy closes; the connection's error if it broke.
    @discardableResult
    public func send(_ message: WebSocketMessage, sensitive: Bool = false) async throws -> WebSocketSendResult {
        let payload: ByteBuffer
        let opcode: Opcode
        switch message {
        case .text(let text):
            payload = ByteBuffer(string: text)
            opcode = .text
        case .binary(let bytes):
            payload = bytes
            opcode = .binary
        }
        let compresses =
            !sensitive && self.deflater != nil
            && payload.readableBytes >= (self.configuration.compression?.minimumSize ?? .max)
        return try await self.write(.message(opcode, payload, compresses: compresses), size: payload.readableBytes)
    }

    /// Sends a text message.
    @discardableResult
    public func send(text: String) async throws -> WebSocketSendResult {
        try await self.send(.text(text))
    }

    /// Sends a binary message.
    @discardableResult
    public func send(binary: ByteBuffer) async throws -> WebSocketSendResult {
        try await self.send(.binary(binary))
    }

    /// Starts the close handshake: sends a close frame; ``messages`` ends when the client answers
    /// (or after ``WebSocketConfiguration/closeTimeout``). Calling it again does nothing.
    ///
    /// - Parameters:
    ///   - code: A code a peer may send (see ``WebSocketCloseCode/isSendable``); others send 1000.
    ///   - reason: At most 123 bytes of UTF-8 are sent.
    public func close(_ code: WebSocketCloseCode = .normalClosure, reason: String = "") async {
        self.decideClose(code, reason: reason)
        let frame = self.state.withLock { state -> ByteBuffer? in
            defer { state.pendingClose = nil }
            return state.pendingClose
        }
        guard let frame else { return }
        await self.writeLock.lock()
        defer { self.writeLock.unlock() }
        self.state.withLock { $0.closeWritten = true }
        try? await self.outbound.write(frame)
    }

    /// Records the close (later sends fail) and prepares its frame for ``close(_:reason:)`` to
    /// write; the first decision wins.
    func decideClose(_ code: WebSocketCloseCode, reason: String) {
        var payload = ByteBuffer()
        payload.writeInteger(code.isSendable ? code.rawValue : WebSocketCloseCode.normalClosure.rawValue)
        payload.writeString(Self.truncated(reason, to: 123))
        let frame = FrameWriter.control(.close, payload: payload)
        let timeout = self.configuration.closeTimeout
        self.state.withLock { state in
            guard !state.closeSent else { return }
            state.closeSent = true
            state.pendingClose = frame
            state.closeDeadline = .now + timeout
            if state.closeReason == nil {
                state.closeReason = WebSocketCloseReason(code: code, reason: reason, initiatedByServer: true)
            }
        }
    }

    // MARK: Internals

    /// Writes the frames of one message (or one control frame) under the write lock, in one
    /// call; nothing is written after the close frame.
    enum Outbound {
        /// A data message, framed (and compressed) under the lock.
        case message(Opcode, ByteBuffer, compresses: Bool)
        /// A data message framed already (shared by a hub's subscribers).
        case prepared([ByteBuffer])
        /// A control frame, ready.
        case control(ByteBuffer)
    }

    func write(_ outbound: Outbound, size: Int) async throws -> WebSocketSendResult {
        let isData: Bool
        if case .control = outbound { isData = false } else { isData = true }
        enum Decision {
            case write, closed, drop, overflow(Int)
        }
        let limit = self.configuration.maxQueuedBytes
        let policy = self.configuration.slowConsumerPolicy
        let decision = self.state.withLock { state -> Decision in
            if state.closeSent && isData { return .closed }
            // One message larger than the limit may still go out on an empty queue.
            if isData, state.queuedBytes > 0, state.queuedBytes + size > limit {
                return policy == .close ? .overflow(state.queuedBytes) : .drop
            }
            state.queuedBytes += size
            if isData { state.lastData = .now }
            return .write
        }
        switch decision {
        case .closed:
            throw WebSocketClosedError()
        case .drop:
            self.logger.debug("dropped a WebSocket message: the client reads too slowly")
            return .dropped
        case .overflow(let queued):
            self.logger.info(
                "closing a WebSocket whose client reads too slowly", metadata: ["queued_bytes": "\(queued)"])
            // The close frame goes out behind what is queued, from the connection's own task.
            self.decideClose(.tryAgainLater, reason: "slow consumer")
            throw WebSocketSlowConsumerError(queuedBytes: queued)
        case .write:
            break
        }
        defer { self.state.withLock { $0.queuedBytes -= size } }
        await self.writeLock.lock()
        defer { self.writeLock.unlock() }
        if self.state.withLock({ $0.closeWritten }) {
            if isData { throw WebSocketClosedError() }
            return .dropped
        }
        let frames: [ByteBuffer]
        switch outbound {
        case .control(let frame):
            frames = [frame]
        case .prepared(let prepared):
            frames = prepared
        case .message(let opcode, let payload, let compresses):
            let frameSize = self.configuration.outboundFrameSize
            if compresses, let deflater = self.deflater {
                frames = FrameWriter.message(
                    opcode, payload: try deflater.compress(payload), frameSize: frameSize, rsv1: true)
            } else {
                frames = FrameWriter.message(opcode, payload: payload, frameSize: frameSize)
            }
        }
        if frames.count == 1 {
            try await self.outbound.write(frames[0])
        } else {
            try await self.outbound.write(contentsOf: frames)
        }
        return .sent
    }

    /// Fails the connection (RFC 6455 §7.1.7): logs, sends a close with `code`, and stops
    /// reading without waiting for the client.
    func fail(_ violation: ProtocolViolation) async {
        self.logger.info(
            "failing a WebSocket connection",
            metadata: ["close_code": "\(violation.code.rawValue)", "reason": "\(violation.reason)"])
        self.state.withLock { state in
            state.abandoned = true
            if state.closeReason == nil {
                state.closeReason = WebSocketCloseReason(
                    code: violation.code, reason: violation.reason, initiatedByServer: true)
            }
        }
        await self.close(violation.code, reason: violation.reason)
    }

    static func truncated(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var result = ""
        for character in text {
            guard result.utf8.count + character.utf8.count <= limit else { break }
            result.append(character)
        }
        return result
    }

    /// The messages of a ``WebSocket``.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = WebSocketMessage
        public typealias Failure = any Error
        let socket: WebSocket

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(socket: self.socket)
        }

        /// Reads the next message.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let socket: WebSocket

            /// The next message; `nil` once the connection is closed (see ``WebSocket/closeReason``).
            ///
            /// - Throws: when two tasks read the same connection at once.
            public mutating func next() async throws -> WebSocketMessage? {
                try await self.socket.reader.next(self.socket)
            }
        }
    }
}

/// Two tasks read one WebSocket at the same time.
public struct WebSocketConcurrentReadError: Error, Sendable, CustomStringConvertible {
    public var description: String { "a WebSocket's messages were read from two tasks at once" }
}
