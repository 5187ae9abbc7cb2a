import NIOCore

/// Runs a connection's task on the event loop that owns its channel.
///
/// Without it, every await on the connection hops between a Swift concurrency thread and the
/// event loop thread (reading a part, writing a response). With it, the handler, the request body
/// and the response writes run on the loop's thread, as in a classic NIO server.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedTaskExecutor()
        self.eventLoop.execute {
            job.runSynchronously(on: executor)
        }
    }
}
