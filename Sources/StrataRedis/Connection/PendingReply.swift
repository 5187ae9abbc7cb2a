import NIOCore
import Synchronization

/// A one-shot answer that may come before or after its caller waits for it, from any thread:
/// a subscription's confirmation. Answered once, by whichever comes first (the state machine
/// below resumes the continuation exactly once, which is why an unsafe continuation is
/// enough). Commands do not use it: their continuations wait in the connection's
/// `CommandQueue` itself.
final class PendingReply: Sendable {
    private enum State {
        case initial
        case waiting(UnsafeContinuation<RESPValue, any Error>)
        case ready(Result<RESPValue, any Error>)
        case answered
    }

    private let state = Mutex<State>(.initial)

    init() {}

    /// The reply, waiting for it if it has not come; a cancelled task stops waiting (the reply
    /// is then dropped when it arrives).
    @inline(__always)
    func value() async throws -> RESPValue {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                let ready = self.state.withLock { state -> Result<RESPValue, any Error>? in
                    switch state {
                    case .initial:
                        state = .waiting(continuation)
                        return nil
                    case .ready(let result):
                        state = .answered
                        return result
                    case .waiting, .answered:
                        return .failure(CancellationError())
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            self.resume(.failure(CancellationError()))
        }
    }

    /// Answers the caller unless it was answered already; `false` then.
    @discardableResult
    func resume(_ result: Result<RESPValue, any Error>) -> Bool {
        let (answered, continuation) = self.state.withLock {
            state -> (Bool, UnsafeContinuation<RESPValue, any Error>?) in
            switch state {
            case .initial:
                state = .ready(result)
                return (true, nil)
            case .waiting(let continuation):
                state = .answered
                return (true, continuation)
            case .ready, .answered:
                return (false, nil)
            }
        }
        continuation?.resume(with: result)
        return answered
    }
}
