import Foundation
import NIOCore
import NIOPosix
import StrataRedis
import StrataTestSupport
import Testing

/// Automatic pipelining, and what happens when the server dies, hangs, kills a connection or
/// the caller gives up.
@Suite struct PipeliningAndFaultTests {
    @Test func tenThousandConcurrentCommandsOnTwoConnectionsAllAnswerInOrder() async throws {
        try await RedisTestEnvironment.withClient({ $0.maxConnections = 2 }) { redis in
            let prefix = RedisTestEnvironment.uniquePrefix()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<100 {
                    group.addTask {
                        let key = RedisKey("\(prefix):\(task)")
                        for index in 0..<100 {
                            // Each task sees its own counter go up one by one: replies matched in order.
                            let value = try await redis.incr(key)
                            #expect(value == index + 1)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let clients = try await redis.send("CLIENT", "LIST").string ?? ""
            let ours = clients.split(separator: "\n").filter { $0.contains("name=strata") && $0.contains("cmd=incr") }
            #expect(ours.count <= 2, "\(ours.count) connections carried the load")
            for task in 0..<100 { try await redis.delete(RedisKey("\(prefix):\(task)")) }
        }
    }

    @Test func aKilledServerFailsInFlightCommandsFastAndThePoolReconnectsAfterARestart() async throws {
        try await RedisServerProcess.with { server in
            try await RedisTestEnvironment.withClient(
                {
                    $0.maxReconnectDelay = .milliseconds(200); $0.commandTimeout = .seconds(20)
                }, url: server.url
            ) { redis in
                try await redis.set("before", to: "1")
                // Load in flight while the server is killed: every command ends, none hangs.
                let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            var outcome = "ok"
                            for _ in 0..<2000 {
                                do {
                                    _ = try await redis.incr("load")
                                } catch let error as RedisClientError {
                                    outcome = error.code.rawValue
                                    break
                                }
                            }
                            return outcome
                        }
                    }
                    try await Task.sleep(for: .milliseconds(30))
                    try await server.kill()
                    var all: [String] = []
                    for try await outcome in group { all.append(outcome) }
                    return all
                }
                #expect(outcomes.count == 20)
                #expect(outcomes.contains { $0 == "connectionClosed" || $0 == "connectionFailed" }, "\(outcomes)")

                // While it is down, new commands fail (fast, typed), never hang.
                let start = ContinuousClock.now
                await #expect(throws: RedisClientError.self) { try await redis.ping() }
                #expect(ContinuousClock.now - start < .seconds(10))

                try await server.start()
                // The pool reconnects by itself: a command soon succeeds again.
                let recovered = await eventually { (try? await redis.ping()) != nil }
                #expect(recovered)
                #expect(try await redis.get("before") == nil)  // a new, empty server
            }
        }
    }

    @Test func aServerThatAcceptsButNeverAnswersGivesACommandTimeout() async throws {
        try await RedisServerProcess.with { server in
            try await RedisTestEnvironment.withClient({ $0.commandTimeout = .milliseconds(300) }, url: server.url) {
                redis in
                // Connected (withClient waited for a PING); now the server stops answering.
                server.pause()
                defer { server.resume() }
                do {
                    _ = try await redis.get("anything")
                    Issue.record("a paused server should time out")
                } catch let error as RedisClientError {
                    #expect(error.code == .commandTimeout)
                    #expect(error.mayHaveRun)
                }
                server.resume()
                // The late reply is dropped, not handed to the next command.
                var answers: [String?] = []
                let answered = await eventually {
                    guard let value = try? await redis.send("ECHO", "after") else { return false }
                    answers.append(value.string)
                    return true
                }
                #expect(answered)
                #expect(answers == ["after"])
            }
        }
    }

    @Test func aPooledConnectionKilledByTheServerIsReplaced() async throws {
        try await RedisTestEnvironment.withClient({
            $0.maxConnections = 1; $0.reconnectDelay = .milliseconds(10)
        }) { redis in
            // The one pooled connection's id; another client kills exactly that connection.
            let id = try #require(try await redis.send("CLIENT", "ID").int)
            try await RedisTestEnvironment.withClient { killer in
                let killed = try await killer.send("CLIENT", "KILL", "ID", "\(id)").int
                #expect(killed == 1)
            }
            let recovered = await eventually {
                (try? await redis.send("ECHO", "back"))?.string == "back"
            }
            #expect(recovered)
            let newID = try await redis.send("CLIENT", "ID").int
            #expect(newID != id, "a new connection took over")
        }
    }

    /// Waits until the server shows connection `id` blocked in `BLPOP` (no sleep-and-hope).
    static func waitUntilBlocked(id: Int) async throws {
        try await RedisTestEnvironment.withClient { observer in
            let blocked = try await eventually {
                // `flags=b`: blocked now (`cmd=blpop` alone would also match a finished BLPOP).
                let line = try await observer.send("CLIENT", "LIST", "ID", "\(id)").string ?? ""
                return line.contains("cmd=blpop") && line.contains("flags=b")
            }
            #expect(blocked, "connection \(id) never blocked")
        }
    }

    /// A `BLPOP key 25` in a task of its own: the server holds it until `key` gets a value.
    static func blockingPop(_ redis: RedisClient, _ key: RedisKey) -> Task<RESPValue, any Error> {
        Task {
            var command = RedisCommand("BLPOP", key: key)
            command.append("25")
            return try await redis.send(command)
        }
    }

    /// A client of one connection (30 s command timeout) held by a `BLPOP` on a fresh key, so
    /// no other reply comes until `release(_:)`: `body` gets the client, the key, the
    /// connection's `CLIENT ID` and the blocked task.
    static func withOneBlockedConnection(
        _ body: (RedisClient, RedisKey, Int, Task<RESPValue, any Error>) async throws -> Void
    ) async throws {
        try await RedisTestEnvironment.withClient({
            $0.maxConnections = 1; $0.commandTimeout = .seconds(30)
        }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            let id = try #require(try await redis.send("CLIENT", "ID").int)
            let blocked = Self.blockingPop(redis, key)
            try await Self.waitUntilBlocked(id: id)
            try await body(redis, key, id, blocked)
        }
    }

    /// Ends a `BLPOP` on `key` from another connection: it answers `[key, "released"]`.
    static func release(_ key: RedisKey) async throws {
        try await RedisTestEnvironment.withClient { other in
            var push = RedisCommand("RPUSH", key: key)
            push.append("released")
            try await other.send(push)
        }
    }

    @Test func aCancelledCommandLeavesTheConnectionInStep() async throws {
        // A blocking command cancelled while the server holds it: its reply (released by
        // another connection's push) arrives later and must be dropped, not handed to the
        // next command.
        try await Self.withOneBlockedConnection { redis, key, id, blocked in
            blocked.cancel()
            await #expect(throws: CancellationError.self) { try await blocked.value }
            try await Self.release(key)
            // Pipelined behind it on the one connection: each gets its own reply.
            #expect(try await redis.send("ECHO", "first").string == "first")
            #expect(try await redis.send("ECHO", "second").string == "second")
            try await redis.set(key, to: "v")
            #expect(try await redis.getString(key) == "v")
            #expect(try await redis.send("CLIENT", "ID").int == id, "the same connection, still in step")
            try await redis.delete(key)
        }
    }

    /// A task already cancelled when it sends gets `CancellationError` and its command never
    /// reaches the server (before, the command was queued and written, and only its reply
    /// dropped: an `INCR` ran although its caller had been cancelled).
    @Test func aTaskCancelledBeforeItSendsRunsNothing() async throws {
        try await RedisTestEnvironment.withClient { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            try await redis.set(key, to: "0")
            let cancelled = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await redis.incr(key)
            }
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            // Commands of one connection run in order: a later command sees any INCR sent before.
            #expect(try await redis.getString(key) == "0", "the cancelled INCR never ran")
            #expect(redis.commandsInFlight == 0)
            try await redis.delete(key)
        }
    }

    /// Cancellations that race the queueing of their commands. The one connection is held by
    /// a `BLPOP`, so no other reply comes meanwhile; 2,000 callers send an `ECHO` of their
    /// own, and half of them are cancelled as they start or a few yields later: before their
    /// command is queued, while it is being queued, or after. Each cancelled caller is
    /// answered at once with `CancellationError`, and once the `BLPOP` is released each of the
    /// others gets its own reply: the dropped replies between theirs leave the connection in
    /// step. (A caller whose handler ran before its slot was queued must notice that under the
    /// queue's lock; one whose handler ran after must be found there.)
    @Test(.timeLimit(.minutes(1)))
    func cancellationsRacingTheQueueingAnswerEachCallerOnce() async throws {
        try await Self.withOneBlockedConnection { redis, key, id, blocked in
            // The half that will be answered, then the half that is cancelled, whose commands
            // are queued (their replies then dropped, before the one of the ECHO after) or not.
            let answered = (0..<1000).map { index in
                Task { try await redis.send("ECHO", "caller \(index)").string }
            }
            let cancelled = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<1000 {
                    group.addTask {
                        let caller = Task { try await redis.send("ECHO", "cancelled \(index)").string }
                        for _ in 0..<(index % 4) { await Task.yield() }
                        caller.cancel()
                        do {
                            _ = try await caller.value
                            return false
                        } catch {
                            return error is CancellationError
                        }
                    }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(cancelled == 1000, "each cancelled caller answered at once with CancellationError")
            try await Self.release(key)
            _ = try await blocked.value
            for (index, caller) in answered.enumerated() {
                let echoed = try await caller.value
                #expect(echoed == "caller \(index)")
                if echoed != "caller \(index)" { break }
            }
            #expect(await eventually { redis.commandsInFlight == 0 })
            #expect(try await redis.send("ECHO", "after").string == "after")
            #expect(try await redis.send("CLIENT", "ID").int == id, "the same connection, still in step")
            try await redis.delete(key)
        }
    }

    /// Sixteen commands held by the server on the one connection, all cancelled: each caller
    /// is answered once, at once, and the replies that come later are dropped, in step.
    @Test func cancellingManyWaitingCommandsAnswersEachAndKeepsTheConnectionInStep() async throws {
        try await RedisTestEnvironment.withClient({
            $0.maxConnections = 1; $0.commandTimeout = .seconds(30)
        }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            let id = try #require(try await redis.send("CLIENT", "ID").int)
            let blocked = (0..<16).map { _ in Self.blockingPop(redis, key) }
            #expect(await eventually { redis.commandsInFlight == 16 })
            try await Self.waitUntilBlocked(id: id)
            for task in blocked.reversed() { task.cancel() }
            for task in blocked {
                await #expect(throws: CancellationError.self) { try await task.value }
            }
            #expect(redis.commandsInFlight == 16, "their replies are still due")
            try await RedisTestEnvironment.withClient { other in
                var push = RedisCommand("RPUSH", key: key)
                for index in 0..<16 { push.append("v\(index)") }
                try await other.send(push)
            }
            #expect(try await redis.send("ECHO", "after").string == "after")
            #expect(await eventually { redis.commandsInFlight == 0 })
            #expect(try await redis.send("CLIENT", "ID").int == id, "the same connection, still in step")
            try await redis.delete(key)
        }
    }

    /// Reply-clocked batching: while replies are due on a connection, new commands wait and go
    /// out together after its next read. Sixteen `BLPOP`s hold the one connection (the first
    /// blocks; the server keeps the rest unread in the connection's query buffer, `qbuf`), so
    /// no reply comes until the test releases them: the hundred commands queued meanwhile
    /// must not reach the server before that, and must all get their own replies after it.
    @Test func commandsQueuedWhileRepliesAreDueGoOutAfterTheNextRead() async throws {
        try await RedisTestEnvironment.withClient({ $0.maxConnections = 1 }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            let id = try #require(try await redis.send("CLIENT", "ID").int)
            let blpop = "*3\r\n$5\r\nBLPOP\r\n$\(key.bytes.readableBytes)\r\n\(key)\r\n$2\r\n25\r\n"
            let blocked = (0..<16).map { _ in Self.blockingPop(redis, key) }
            #expect(await eventually { redis.commandsInFlight == 16 })
            try await Self.waitUntilBlocked(id: id)
            #expect(
                try await eventually { try await Self.queryBuffer(of: id) == 15 * blpop.utf8.count },
                "the fifteen BLPOPs behind the first wait unread on the server")

            let echoes = (0..<100).map { index in
                Task { try await redis.send("ECHO", "echo \(index)").string }
            }
            #expect(await eventually { redis.commandsInFlight == 116 })
            // Every write a caller scheduled has run once each loop has run a task after it.
            for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() { try await loop.submit {}.get() }
            #expect(
                try await Self.queryBuffer(of: id) == 15 * blpop.utf8.count,
                "commands queued while replies are due stay in the client until a reply comes")

            try await RedisTestEnvironment.withClient { other in
                var push = RedisCommand("RPUSH", key: key)
                for index in 0..<16 { push.append("v\(index)") }
                try await other.send(push)
            }
            #expect(await eventually { redis.commandsInFlight == 0 }, "the held commands went out after the read")
            for task in blocked { _ = try await task.value }
            for (index, task) in echoes.enumerated() { #expect(try await task.value == "echo \(index)") }
            #expect(try await redis.send("CLIENT", "ID").int == id, "one connection throughout")
            try await redis.delete(key)
        }
    }

    /// A command still waiting for the next write when its connection is killed never reached
    /// the server, so the client sends it again on another connection; the ones written fail
    /// with `mayHaveRun == true` and are not sent again.
    @Test func aCommandHeldBackWhenItsConnectionDiesIsSentOnAnother() async throws {
        try await RedisTestEnvironment.withClient({ $0.maxConnections = 1 }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            let id = try #require(try await redis.send("CLIENT", "ID").int)
            let blocked = (0..<16).map { _ in Self.blockingPop(redis, key) }
            #expect(await eventually { redis.commandsInFlight == 16 })
            try await Self.waitUntilBlocked(id: id)
            let held = Task { try await redis.send("ECHO", "held").string }
            #expect(await eventually { redis.commandsInFlight == 17 })
            try await RedisTestEnvironment.withClient { killer in
                _ = try await killer.send("CLIENT", "KILL", "ID", "\(id)")
            }
            for task in blocked {
                await #expect {
                    _ = try await task.value
                } throws: { error in
                    (error as? RedisClientError)?.mayHaveRun == true
                }
            }
            #expect(try await held.value == "held")
            #expect(try await redis.send("CLIENT", "ID").int != id, "a new connection")
        }
    }

    /// The unread bytes the server holds for connection `id` (`qbuf` of `CLIENT LIST`).
    static func queryBuffer(of id: Int) async throws -> Int? {
        try await RedisTestEnvironment.withClient { observer in
            let line = try await observer.send("CLIENT", "LIST", "ID", "\(id)").string ?? ""
            return line.split(separator: " ").first { $0.hasPrefix("qbuf=") }.flatMap { Int($0.dropFirst(5)) }
        }
    }

    @Test func aFullPoolAnswersPoolExhaustedWhenItsWaitersAreFullOrTimeOut() async throws {
        for acquireTimeout in [Duration.milliseconds(200), .seconds(20)] {
            try await RedisTestEnvironment.withClient({
                $0.maxConnections = 1
                $0.maxPipelinedCommands = 1
                $0.maxWaiters = 1
                $0.acquireTimeout = acquireTimeout
                $0.commandTimeout = .seconds(30)
            }) { redis in
                let id = try #require(try await redis.send("CLIENT", "ID").int)
                let key = RedisKey(RedisTestEnvironment.uniquePrefix())
                var blocking = RedisCommand("BLPOP", key: key)
                blocking.append("25")
                // One command holds the only slot until another connection releases it.
                async let holder = redis.send(blocking)
                try await Self.waitUntilBlocked(id: id)
                if acquireTimeout < .seconds(1) {
                    // The one waiter gives up after the acquire timeout.
                    do {
                        _ = try await redis.send("ECHO", "waiting")
                        Issue.record("the pool is full")
                    } catch let error as RedisClientError {
                        #expect(error.code == .poolExhausted && !error.mayHaveRun)
                        #expect(error.message.contains("acquire timeout"), "\(error)")
                    }
                    try await Self.release(key)
                } else {
                    // Two commands compete for the one waiter's place: whichever comes second is
                    // refused at once, the other is served when the slot frees.
                    func attempt(_ word: String) async -> Result<RESPValue, any Error> {
                        do { return .success(try await redis.send("ECHO", word)) } catch { return .failure(error) }
                    }
                    // The refusal comes first (the other waits for the slot), then the slot is
                    // freed for the waiter.
                    let outcomes = try await withThrowingTaskGroup(of: Result<RESPValue, any Error>.self) { group in
                        group.addTask { await attempt("a") }
                        group.addTask { await attempt("b") }
                        var outcomes: [Result<RESPValue, any Error>] = []
                        if let first = try await group.next() { outcomes.append(first) }
                        try await Self.release(key)
                        for try await outcome in group { outcomes.append(outcome) }
                        return outcomes
                    }
                    let served = outcomes.compactMap { try? $0.get().string }
                    let refused = outcomes.compactMap { outcome -> RedisClientError? in
                        if case .failure(let error as RedisClientError) = outcome { return error }
                        return nil
                    }
                    #expect(served.count == 1 && refused.count == 1, "\(outcomes)")
                    #expect(refused.first?.code == .poolExhausted)
                    #expect(refused.first?.message.contains("maxWaiters") == true)
                }
                #expect(try await holder.elements?.last?.string == "released")
            }
        }
    }

    @Test func aMalformedReplyClosesTheConnectionWithATypedError() async throws {
        // A fake server that answers garbage: the client fails that command, closes, and a
        // later command on a fresh connection works against the real server's replacement.
        let listener = try FakeServer(reply: "?garbage\r\n")
        defer { listener.stop() }
        try await RedisTestEnvironment.withClient(
            {
                $0.protocolVersion = .resp2; $0.clientName = nil
            },
            url: "redis://127.0.0.1:\(listener.port)", connected: false
        ) { redis in
            do {
                try await redis.ping()
                Issue.record("garbage should fail")
            } catch let error as RedisClientError {
                #expect(error.code == .protocolViolation)
            }
        }
    }
}

/// A TCP server that answers every read with fixed bytes: a broken Redis.
final class FakeServer {
    let port: Int
    private let socket: Int32
    private let thread: Thread

    init(reply: String) throws {
        let fd = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listen(fd, 8)
        self.socket = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let bytes = Array(reply.utf8)
        self.thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                while read(client, &buffer, buffer.count) > 0 {
                    _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                }
                close(client)
            }
        }
        self.thread.start()
    }

    func stop() {
        shutdown(self.socket, Int32(SHUT_RDWR))
        close(self.socket)
    }
}
