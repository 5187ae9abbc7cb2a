import Logging
import NIOCore
import Synchronization

/// Topics for WebSocket connections: publish once, deliver to every subscriber, and never let a
/// slow subscriber hold the others up.
///
/// Each member has its own outbox, bounded in bytes, drained by a task of its own; a publish
/// only appends to outboxes, so it returns at once whatever the subscribers' speed. A message is
/// framed once and the same bytes go to every subscriber (uncompressed, even on connections that
/// agreed permessage-deflate: their compression context cannot be shared).
///
/// ```swift
/// let hub = WebSocketHub()
/// router.get("/chat") { request, context in
///     endpoint.upgrade(request, context: context) { socket in
///         try await hub.join(socket) { member in
///             member.subscribe(to: "lobby")
///             for try await message in socket.messages {
///                 hub.publish(message, to: "lobby")
///             }
///         }
///     }
/// }
/// ```
public final class WebSocketHub: Sendable {
    /// What happens to a message for a subscriber whose outbox is full.
    public enum BackPressurePolicy: Sendable, Hashable {
        /// Close the subscriber's connection with 1013 (try again later). The default: a chat
        /// member that silently misses messages is worse off than one told to reconnect.
        case close
        /// Drop the oldest queued messages to make room (live dashboards: only the latest matters).
        case dropOldest
        /// Drop the new message.
        case dropNewest
    }

    /// The most bytes queued for one subscriber.
    public let outboxLimit: Int
    /// What to do when a subscriber's outbox is full.
    public let policy: BackPressurePolicy
    private let topics = Mutex<[String: [ObjectIdentifier: Outbox]]>([:])

    /// - Parameters:
    ///   - outboxLimit: Bytes that may wait for one subscriber (at least one message always
    ///     fits). Default 1 MiB.
    ///   - policy: What a full outbox does. Default ``BackPressurePolicy/close``.
    public init(outboxLimit: Int = 1 << 20, policy: BackPressurePolicy = .close) {
        self.outboxLimit = max(outboxLimit, 1)
        self.policy = policy
    }

    /// Makes `socket` a member for the duration of `body`: its outbox is drained meanwhile, and
    /// its subscriptions end when `body` returns or throws.
    public func join<Result: Sendable>(
        _ socket: WebSocket,
        _ body: (Member) async throws -> Result
    ) async throws -> Result {
        let outbox = Outbox(socket: socket, limit: self.outboxLimit, policy: self.policy)
        let member = Member(hub: self, outbox: outbox)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await outbox.drain() }
            defer {
                self.leaveAll(outbox)
                outbox.finish()
                group.cancelAll()
            }
            return try await body(member)
        }
    }

    /// Sends `message` to every subscriber of `topic` but `excluding`; returns how many
    /// subscribers it was queued for.
    @discardableResult
    public func publish(_ message: WebSocketMessage, to topic: String, excluding: WebSocket? = nil) -> Int {
        let outboxes = self.topics.withLock { topics in topics[topic].map { Array($0.values) } ?? [] }
        guard !outboxes.isEmpty else { return 0 }
        let prepared = PreparedMessage(message)
        var queued = 0
        for outbox in outboxes where outbox.socket !== excluding {
            if outbox.enqueue(prepared) { queued += 1 }
        }
        return queued
    }

    /// The number of subscribers of `topic`.
    public func subscriberCount(of topic: String) -> Int {
        self.topics.withLock { $0[topic]?.count ?? 0 }
    }

    fileprivate func subscribe(_ outbox: Outbox, to topic: String) {
        self.topics.withLock { $0[topic, default: [:]][ObjectIdentifier(outbox)] = outbox }
        outbox.topics.withLock { _ = $0.insert(topic) }
    }

    fileprivate func unsubscribe(_ outbox: Outbox, from topic: String) {
        self.topics.withLock { topics in
            topics[topic]?[ObjectIdentifier(outbox)] = nil
            if topics[topic]?.isEmpty == true { topics[topic] = nil }
        }
        outbox.topics.withLock { _ = $0.remove(topic) }
    }

    private func leaveAll(_ outbox: Outbox) {
        for topic in outbox.topics.withLock({ $0 }) { self.unsubscribe(outbox, from: topic) }
    }

    /// A connection's membership, valid inside ``WebSocketHub/join(_:_:)``.
    public struct Member: Sendable {
        let hub: WebSocketHub
        fileprivate let outbox: Outbox

        /// Starts delivering `topic`'s messages to this connection.
        public func subscribe(to topic: String) {
            self.hub.subscribe(self.outbox, to: topic)
        }

        /// Stops delivering `topic`'s messages.
        public func unsubscribe(from topic: String) {
            self.hub.unsubscribe(self.outbox, from: topic)
        }

        /// The topics this connection is subscribed to.
        public var topics: Set<String> { self.outbox.topics.withLock { $0 } }
    }
}

/// A message framed once for every subscriber.
struct PreparedMessage: Sendable {
    let frames: [ByteBuffer]
    let size: Int

    init(_ message: WebSocketMessage) {
        switch message {
        case .text(let text):
            let payload = ByteBuffer(string: text)
            self.frames = FrameWriter.message(.text, payload: payload, frameSize: 64 << 10)
            self.size = payload.readableBytes
        case .binary(let payload):
            self.frames = FrameWriter.message(.binary, payload: payload, frameSize: 64 << 10)
            self.size = payload.readableBytes
        }
    }
}

/// One member's queue of prepared messages and the task that writes them.
private final class Outbox: Sendable {
    let socket: WebSocket
    let topics = Mutex<Set<String>>([])
    private let limit: Int
    private let policy: WebSocketHub.BackPressurePolicy
    private let state = Mutex<State>(State())

    struct State {
        var queue = CircularBuffer<PreparedMessage>()
        var bytes = 0
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
        var closeRequested = false
    }

    init(socket: WebSocket, limit: Int, policy: WebSocketHub.BackPressurePolicy) {
        self.socket = socket
        self.limit = limit
        self.policy = policy
    }

    /// Queues `message`; `false` when it was dropped or the member is being closed.
    func enqueue(_ message: PreparedMessage) -> Bool {
        enum Outcome {
            case queued(CheckedContinuation<Void, Never>?)
            case dropped
            case overflow
        }
        let outcome = self.state.withLock { state -> Outcome in
            guard !state.finished else { return .dropped }
            if state.bytes > 0 && state.bytes + message.size > self.limit {
                switch self.policy {
                case .dropNewest:
                    return .dropped
                case .close:
                    state.finished = true
                    state.closeRequested = true
                    state.queue.removeAll()
                    state.bytes = 0
                    defer { state.waiter = nil }
                    state.waiter?.resume()
                    return .overflow
                case .dropOldest:
                    while state.bytes > 0 && state.bytes + message.size > self.limit, let old = state.queue.popFirst() {
                        state.bytes -= old.size
                    }
                }
            }
            state.queue.append(message)
            state.bytes += message.size
            defer { state.waiter = nil }
            return .queued(state.waiter)
        }
        switch outcome {
        case .queued(let waiter):
            waiter?.resume()
            return true
        case .dropped:
            return false
        case .overflow:
            self.socket.logger.info("closing a hub subscriber that reads too slowly")
            // Later sends fail at once; the drain task writes the close frame.
            self.socket.decideClose(.tryAgainLater, reason: "slow consumer")
            return false
        }
    }

    /// Writes queued messages until ``finish()`` or cancellation.
    func drain() async {
        while !Task.isCancelled {
            let next = await self.next()
            guard let next else {
                if self.state.withLock({ $0.closeRequested }) { await self.socket.close(.tryAgainLater) }
                return
            }
            do {
                _ = try await self.socket.write(.prepared(next.frames), size: next.size)
            } catch {
                self.finish()
                return
            }
        }
    }

    private func next() async -> PreparedMessage? {
        while true {
            let (message, finished) = self.state.withLock { state -> (PreparedMessage?, Bool) in
                guard let message = state.queue.popFirst() else { return (nil, state.finished) }
                state.bytes -= message.size
                return (message, false)
            }
            if let message { return message }
            if finished || Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if !state.queue.isEmpty || state.finished { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.finish()
            }
        }
    }

    func finish() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
