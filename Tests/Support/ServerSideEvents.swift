import Synchronization

/// Where a route reports what happened on the server side, for tests to await.
public final class ServerSideEvents: Sendable {
    let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    public init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: String.self)
    }

    public func record(_ event: String) { self.continuation.yield(event) }

    /// The next event, or `nil` if none arrives within `timeout`.
    public func next(timeout: Duration = .seconds(10)) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask { [stream] in
                var iterator = stream.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// A gate a handler waits on until the test opens it.
public final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = self.state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Whether the gate is open.
    public var isOpen: Bool { self.state.withLock { $0.open } }

    /// How many are waiting for it to open.
    public var waiting: Int { self.state.withLock { $0.waiters.count } }

    /// Waits until the gate opens or `timeout` passes; `false` on timeout.
    public func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !self.isOpen {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    public func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
