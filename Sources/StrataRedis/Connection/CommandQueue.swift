import NIOCore
import Synchronization

/// Where the reply to one queued or written command goes.
///
/// A plain value, with no object per command: the caller's continuation itself, and the
/// address of the task waiting on it, by which the task's cancellation finds it.
struct ReplySlot {
    /// Which part of a send the reply answers.
    enum Part: UInt8 {
        /// The reply of a single command: it goes to the continuation.
        case whole
        /// A reply of a batch before its last: kept until the last one comes.
        case batched
        /// The last reply of a batch: the continuation gets every reply of the batch as an array.
        case batchEnd
    }

    /// The caller waiting for the reply; `nil` once it was answered otherwise (a timeout, its
    /// cancellation): the reply is then read and dropped when it comes.
    var continuation: UnsafeContinuation<RESPValue, any Error>?
    /// The waiting task's address (see ``CommandQueue/currentTask()``).
    let owner: UInt
    let part: Part
    /// Added to the command timeout (blocking commands).
    let extraTimeout: TimeAmount
    /// When the caller stops waiting: set when the command is written.
    var deadline = NIODeadline.distantFuture
}

/// The commands of one connection that are not answered yet, in order: those waiting for the
/// next write, then those written and waiting for their replies.
///
/// One lock guards both, so a slot is always in exactly one place, and its continuation is
/// taken exactly once: by its reply, its timeout, the connection's end or the caller's
/// cancellation, whichever comes first. Callers take the lock once per command; the event
/// loop once per write and once per read.
final class CommandQueue: Sendable {
    struct State {
        /// Encoded commands waiting for the next write.
        var bytes = ByteBuffer()
        /// Every unanswered command's slot: the first `written` have gone out.
        var slots = CircularBuffer<ReplySlot>(initialCapacity: 16)
        var written = 0
        /// A write is scheduled (or held back for the next read).
        var scheduled = false
        /// The waiting commands go out after the connection's next read (`scheduled` stays
        /// set, so no one schedules a write meanwhile), unless `holdAtMost` gather first.
        var heldBack = false
        /// Why the connection ended, once it has: nothing is queued after.
        var failure: RedisClientError?
    }

    let state = Mutex<State>(State())

    /// How many cancellation handlers found no waiting slot of their task's, counted under the
    /// lock. A caller reads it before it installs its handler and again, under the lock, as it
    /// queues: only when it moved meanwhile can its own handler have run before its slot was
    /// there, and only then does it read its task's cancellation (see
    /// `RedisConnection.exchange`), which costs a retain, a release and a runtime call.
    let missedCancellations = Atomic<Int>(0)

    /// The current task's address: unique among live tasks, and a task waiting on a slot is
    /// alive. It identifies a slot only together with a continuation that is still set, so a
    /// task that ended and whose address was reused cannot be mistaken for the new one (its
    /// slots, if any are left, have no continuation).
    @inline(__always)
    static func currentTask() -> UInt {
        withUnsafeCurrentTask { task in unsafeBitCast(task, to: UInt.self) }
    }

    /// Takes the continuation of `owner`'s unanswered command, if it is still waiting.
    func takeContinuation(of owner: UInt) -> UnsafeContinuation<RESPValue, any Error>? {
        self.state.withLock { state in
            // From the newest: a task's waiting command is among the last queued.
            var index = state.slots.endIndex
            while index != state.slots.startIndex {
                index = state.slots.index(before: index)
                if state.slots[index].owner == owner, let continuation = state.slots[index].continuation {
                    state.slots[index].continuation = nil
                    return continuation
                }
            }
            self.missedCancellations.add(1, ordering: .relaxed)
            return nil
        }
    }

    /// Moves the slots of `count` replies, oldest first, into `matched`; `false` when fewer
    /// commands were written than that (a reply no command asked for).
    func match(_ count: Int, into matched: inout [ReplySlot]) -> Bool {
        self.state.withLock { state in
            guard count <= state.written else { return false }
            for _ in 0..<count {
                guard let slot = state.slots.popFirst() else { return false }
                matched.append(slot)
            }
            state.written -= count
            return true
        }
    }

    /// Takes the continuations of the written commands whose deadline passed (their replies
    /// will still be read and dropped); returns the next deadline not passed, and the oldest
    /// written command's.
    func expire(
        now: NIODeadline, into expired: inout [UnsafeContinuation<RESPValue, any Error>]
    ) -> (next: NIODeadline?, oldest: NIODeadline?) {
        self.state.withLock { state in
            var next: NIODeadline?
            var index = state.slots.startIndex
            for _ in 0..<state.written {
                let deadline = state.slots[index].deadline
                guard deadline <= now else {
                    next = deadline
                    break
                }
                if let continuation = state.slots[index].continuation {
                    state.slots[index].continuation = nil
                    expired.append(continuation)
                }
                index = state.slots.index(after: index)
            }
            return (next, state.written > 0 ? state.slots.first?.deadline : nil)
        }
    }

    /// Ends the queue: every continuation still set, with whether its command was written.
    func fail(_ failure: RedisClientError) -> (slots: Int, waiting: [(UnsafeContinuation<RESPValue, any Error>, Bool)])
    {
        self.state.withLock { state in
            if state.failure == nil { state.failure = failure }
            var waiting: [(UnsafeContinuation<RESPValue, any Error>, Bool)] = []
            let count = state.slots.count
            var position = 0
            while let slot = state.slots.popFirst() {
                if let continuation = slot.continuation { waiting.append((continuation, position < state.written)) }
                position += 1
            }
            state.written = 0
            state.bytes = ByteBuffer()
            return (count, waiting)
        }
    }
}
