import NIOCore
import Synchronization

/// A first-in-first-out lock for async code: one writer at a time on a connection, in the
/// order they asked, so frames never interleave and nothing follows the close frame.
final class WriteLock: Sendable {
    private let state = Mutex<(locked: Bool, waiters: CircularBuffer<CheckedContinuation<Void, Never>>)>(
        (false, CircularBuffer()))

    func lock() async {
        let acquired = self.state.withLock { state -> Bool in
            guard !state.locked else { return false }
            state.locked = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { continuation in
            let acquiredNow = self.state.withLock { state -> Bool in
                guard state.locked else {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquiredNow { continuation.resume() }
        }
    }

    func unlock() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let next = state.waiters.popFirst() { return next }  // stays locked, handed over
            state.locked = false
            return nil
        }
        next?.resume()
    }
}
