public import NIOCore

/// Runs tasks on one event loop: a task with this executor preference runs on the loop's thread.
///
/// Without it, every await on a connection hops between a Swift concurrency thread and the
/// event loop thread (reading a part, writing a response). With it, a handler, its request body
/// and its writes run on the loop's thread, as in a classic NIO server. The server runs each
/// connection's task with it, and the reverse proxy runs uploads on their upstream
/// connection's loop.
///
/// ```swift
/// try await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) { ... }
/// ```
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop jobs run on.
    public let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `job` on the event loop's thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedTaskExecutor()
        self.eventLoop.execute {
            job.runSynchronously(on: executor)
        }
    }
}
