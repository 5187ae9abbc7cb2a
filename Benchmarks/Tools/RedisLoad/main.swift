// Load generator for scripts/bench-redis.sh: N concurrent callers send GET or SET of a fixed
// value through one StrataRedis client for a fixed time, then print requests/s, latency
// percentiles and this process's CPU time.
//
//   RedisLoad --url redis://127.0.0.1:6379 --callers 50 --seconds 10 --command get --size 64
//             [--connections 8] [--pipeline-depth 4096]
//
// `--pipeline-depth 1 --connections 50` turns automatic pipelining off: each connection
// carries one command at a time, as each of `redis-benchmark -c 50`'s connections does.
//
// `--command floor` talks to no server: each call hands its continuation to a NIO event loop,
// which resumes the calls queued in one batch per turn, as a connection does with replies.
// That is the cost of one task awaiting one reply from an event loop, with no I/O and no
// parsing: no client built that way can go faster on this machine. `--command
// floor-cancellable` is the same with a cancellation handler around each call, as the client
// installs around each command it waits for.
//
// `--command floor-get` and `floor-set` do talk to the server, through the least a pipelining
// client can be: connections that append each caller's pre-encoded command to an outbox under
// a lock, write the outbox once per event-loop turn and resume the callers in the order their
// replies come, read by a parser that knows only the two replies it expects. No pool, no
// timeouts, no cancellation, no metrics, no reply values. What it reaches is the ceiling of any
// Swift client whose callers are tasks on this machine, beside which the client's own rows are
// read. `floor-get-cancellable` is `floor-get` with a cancellation handler around each call.
import Foundation
import Logging
import NIOCore
import NIOPosix
import StrataRedis
import Synchronization

func option(_ name: String, _ fallback: String) -> String {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}

/// Log-scale latency buckets (2% wide) from 1 µs: merged at the end for percentiles.
struct Histogram {
    static let buckets = 1200
    var counts = [Int](repeating: 0, count: Self.buckets)

    /// log base 1.02 of the latency in microseconds, from the double's exponent and a cubic
    /// fit of log2 over the mantissa (accurate to well under a bucket).
    static func bucket(_ nanoseconds: Int64) -> Int {
        let micros = max(1.0, Double(nanoseconds) / 1000)
        let exponent = Double(micros.exponent)
        let m = micros.significand - 1  // 0..<1
        let log2 = exponent + m * (1.4425 + m * (-0.7002 + m * 0.2577))
        return min(Self.buckets - 1, Int(log2 / 0.028569152))  // log2(1.02)
    }

    mutating func record(_ nanoseconds: Int64) { self.counts[Self.bucket(nanoseconds)] += 1 }

    mutating func merge(_ other: Histogram) {
        for index in 0..<Self.buckets { self.counts[index] += other.counts[index] }
    }

    func percentile(_ p: Double) -> Double {
        let total = self.counts.reduce(0, +)
        var seen = 0
        for (index, count) in self.counts.enumerated() {
            seen += count
            if Double(seen) >= p * Double(total) { return pow(1.02, Double(index + 1)) / 1000 }
        }
        return 0
    }
}

let url = option("--url", "redis://127.0.0.1:6379")
let callers = Int(option("--callers", "50")) ?? 50
let seconds = Double(option("--seconds", "10")) ?? 10
let command = option("--command", "get")
let size = Int(option("--size", "64")) ?? 64
let connections = Int(option("--connections", "8")) ?? 8
/// Unanswered commands per connection (`RedisConfiguration.maxPipelinedCommands`); 1 = no
/// pipelining.
let pipelineDepth = Int(option("--pipeline-depth", "4096")) ?? 4096
/// `global` (the default): callers are plain tasks. `loops`: each caller runs on one of the
/// NIO event loops, as a handler of a Strata server (or any NIO server) does.
let executor = option("--executor", "global")

var logger = Logger(label: "redis-load")
logger.logLevel = .error
var configuration = try RedisConfiguration(url: url)
configuration.maxConnections = connections
configuration.minConnections = 1
configuration.maxPipelinedCommands = pipelineDepth
configuration.pipelineDepthToGrow = min(configuration.pipelineDepthToGrow, pipelineDepth)
let client = RedisClient(configuration: configuration, logger: logger)
let value = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
let key: RedisKey = "strata:bench:key"
if !command.hasPrefix("floor") || command.hasPrefix("floor-get") { try await client.set(key, to: value) }

/// The floor: continuations resumed by an event loop in batches, nothing else.
final class EventLoopEcho: Sendable {
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    let queue = Mutex<(waiting: [UnsafeContinuation<Void, Never>], scheduled: Bool)>(([], false))

    func call() async {
        await withUnsafeContinuation { continuation in
            let schedule = self.queue.withLock { queue -> Bool in
                queue.waiting.append(continuation)
                defer { queue.scheduled = true }
                return !queue.scheduled
            }
            if schedule {
                self.eventLoop.execute {
                    var batch: [UnsafeContinuation<Void, Never>] = []
                    self.queue.withLock { queue in
                        swap(&batch, &queue.waiting)
                        queue.scheduled = false
                    }
                    for continuation in batch { continuation.resume() }
                }
            }
        }
    }
}
let echo = EventLoopEcho()

/// One connection of the minimal client (`floor-get`, `floor-set`).
final class MinimalConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<MinimalReplyHandler>
    let outbox = Mutex<(bytes: ByteBuffer, waiting: [UnsafeContinuation<Void, Never>], scheduled: Bool)>(
        (ByteBuffer(), [], false))

    init(channel: any Channel, handler: NIOLoopBound<MinimalReplyHandler>) {
        self.channel = channel
        self.handler = handler
    }

    static func connect(port: Int, on eventLoop: any EventLoop) async throws -> MinimalConnection {
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MinimalReplyHandler())
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: MinimalReplyHandler.self),
                eventLoop: channel.eventLoop)
        }.get()
        return MinimalConnection(channel: channel, handler: handler)
    }

    func call(_ command: ByteBuffer) async {
        await withUnsafeContinuation { continuation in
            let schedule = self.outbox.withLock { outbox -> Bool in
                outbox.bytes.writeImmutableBuffer(command)
                outbox.waiting.append(continuation)
                defer { outbox.scheduled = true }
                return !outbox.scheduled
            }
            if schedule { self.channel.eventLoop.execute { self.drain() } }
        }
    }

    private func drain() {
        var bytes = ByteBuffer()
        var waiting: [UnsafeContinuation<Void, Never>] = []
        self.outbox.withLock { outbox in
            outbox.scheduled = false
            swap(&bytes, &outbox.bytes)
            swap(&waiting, &outbox.waiting)
            outbox.waiting.reserveCapacity(waiting.count)
        }
        self.handler.value.pending.append(contentsOf: waiting)
        self.channel.writeAndFlush(bytes, promise: nil)
    }
}

/// Resumes callers in order, one per complete `+…` or `$n…` reply.
final class MinimalReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var pending = CircularBuffer<UnsafeContinuation<Void, Never>>(initialCapacity: 1024)
    var buffer = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.buffer.readableBytes == 0 { self.buffer = bytes } else { self.buffer.writeBuffer(&bytes) }
        while let length = Self.replyLength(self.buffer.readableBytesView) {
            self.buffer.moveReaderIndex(forwardBy: length)
            self.pending.popFirst()?.resume()
        }
    }

    /// The length of the complete reply at the start of `bytes`, `nil` if it has not all come.
    static func replyLength(_ bytes: ByteBufferView) -> Int? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = newline - bytes.startIndex + 1
        guard bytes.first == UInt8(ascii: "$") else { return line }
        var size = 0
        for byte in bytes[(bytes.startIndex + 1)..<(newline - 1)] {
            // `$-1` (no such key) is the whole reply; so is anything not a length, rather
            // than a trap on the subtraction below.
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return line }
            size = size * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return bytes.count >= line + size + 2 ? line + size + 2 : nil
    }
}

let start = ContinuousClock.now
/// Runs jobs on one event loop's thread.
final class LoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop
    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedTaskExecutor()
        self.eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
enum Operation { case get, set, floor, floorCancellable, floorGet, floorSet, floorGetCancellable }
let operation: Operation =
    switch command {
    case "floor": .floor
    case "floor-cancellable": .floorCancellable
    case "floor-get": .floorGet
    case "floor-get-cancellable": .floorGetCancellable
    case "floor-set": .floorSet
    case "set": .set
    default: .get
    }
var minimalConnections: [MinimalConnection] = []
if operation == .floorGet || operation == .floorSet || operation == .floorGetCancellable {
    let port = Int(url.split(separator: ":").last ?? "") ?? 6379
    for _ in 0..<connections {
        minimalConnections.append(
            try await MinimalConnection.connect(port: port, on: MultiThreadedEventLoopGroup.singleton.next()))
    }
}
let minimal = minimalConnections
/// `GET key` and `SET key value`, encoded once.
func encoded(_ words: [ByteBuffer]) -> ByteBuffer {
    var buffer = ByteBuffer(string: "*\(words.count)\r\n")
    for word in words {
        buffer.writeString("$\(word.readableBytes)\r\n")
        buffer.writeImmutableBuffer(word)
        buffer.writeString("\r\n")
    }
    return buffer
}
let getCommand = encoded([ByteBuffer(string: "GET"), ByteBuffer(string: "strata:bench:key")])
let setCommand = encoded([ByteBuffer(string: "SET"), ByteBuffer(string: "strata:bench:key"), value])
let loopExecutors = MultiThreadedEventLoopGroup.singleton.makeIterator().map { LoopExecutor($0) }

/// One caller: `seconds` of back-to-back commands, each one's latency recorded.
@Sendable func caller(_ index: Int) async throws -> (Int, Histogram) {
    var histogram = Histogram()
    var done = 0
    let end = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
    var before = NIODeadline.now()
    while before < end {
        switch operation {
        case .floor: await echo.call()
        case .floorCancellable:
            await withTaskCancellationHandler {
                await echo.call()
            } onCancel: {
            }
        case .set: try await client.set(key, to: value)
        case .floorGet: await minimal[index % minimal.count].call(getCommand)
        case .floorSet: await minimal[index % minimal.count].call(setCommand)
        case .floorGetCancellable:
            await withTaskCancellationHandler {
                await minimal[index % minimal.count].call(getCommand)
            } onCancel: {
            }
        case .get: _ = try await client.get(key)
        }
        // One clock read per call: this call's end is the next one's start.
        let after = NIODeadline.now()
        histogram.record((after - before).nanoseconds)
        before = after
        done += 1
    }
    return (done, histogram)
}

let (total, histogram) = try await withThrowingTaskGroup(of: (Int, Histogram).self) { group in
    for index in 0..<callers {
        if executor == "loops" {
            group.addTask(executorPreference: loopExecutors[index % loopExecutors.count]) { try await caller(index) }
        } else {
            // No `executorPreference:` argument at all, as an application's plain `Task`: with
            // `executorPreference: nil` the runtime took each task's status-record lock on every
            // enqueue (7 % of the samples in perf, `withStatusRecordLock` in
            // `getPreferredTaskExecutor`), and the per-command cancellation handler made that
            // lock contended.
            group.addTask { try await caller(index) }
        }
    }
    var total = 0
    var merged = Histogram()
    for try await (done, histogram) in group {
        total += done
        merged.merge(histogram)
    }
    return (total, merged)
}
let elapsed = ContinuousClock.now - start
let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
var usage = rusage()
getrusage(RUSAGE_SELF.rawValue, &usage)
let cpu =
    Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
    + Double(usage.ru_stime.tv_usec) / 1e6
print(
    String(
        format: "rps=%.0f p50_ms=%.3f p99_ms=%.3f cpu_s=%.2f elapsed_s=%.2f", Double(total) / elapsedSeconds,
        histogram.percentile(0.5), histogram.percentile(0.99), cpu, elapsedSeconds))
await client.shutdown()
