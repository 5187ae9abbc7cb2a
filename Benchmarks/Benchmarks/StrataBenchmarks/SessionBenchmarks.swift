import Benchmark
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataSessions

/// Time and mallocs of a session's load and commit on the memory store: a request that never
/// touches the session (the middleware's pass-through), one that reads an unchanged session,
/// and one that changes a value.
func sessionBenchmarks() {
    enum Counter: SessionKey {
        typealias Value = Int
        static let name = "count"
    }
    let ok = ClosureResponder<BasicContext> { _, _ in ServerResponse(status: .ok, body: .init(string: "ok")) }
    let read = ClosureResponder<BasicContext> { _, context in
        let count = try await context.session.value(for: Counter.self) ?? 0
        return ServerResponse(status: .ok, body: .init(string: "\(count)"))
    }
    let write = ClosureResponder<BasicContext> { _, context in
        let session = try context.session
        let count = try await session.value(for: Counter.self) ?? 0
        try await session.set(Counter.self, to: count + 1)
        return ServerResponse(status: .ok, body: .init(string: "\(count + 1)"))
    }
    let store = MemorySessionStore()
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    guard let sessions = try? SessionMiddleware<BasicContext>(store: store, logger: logger) else {
        fatalError("the default session configuration is valid")
    }
    let source = ContextSource(logger: logger)
    let id = SessionID()
    let now = SystemWallClock().now()
    let created = SessionRecord(values: ["count": Array("1".utf8)], createdAt: now, lastSeen: now)
    let plain = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/")
    var withCookie = plain
    withCookie.headerFields[.cookie] = "__Host-session=\(id.token)"

    Benchmark("Sessions: request that never touches the session") { benchmark in
        let stack = sessions.wrapping(ok)
        for _ in benchmark.scaledIterations {
            blackHole(
                try await stack.respond(to: ServerRequest(head: withCookie), context: BasicContext(source: source)))
        }
    }
    Benchmark("Sessions: load of an unchanged session") { benchmark in
        _ = try await store.create(id, record: created, expiresAt: now + .seconds(3600))
        let stack = sessions.wrapping(read)
        for _ in benchmark.scaledIterations {
            blackHole(
                try await stack.respond(to: ServerRequest(head: withCookie), context: BasicContext(source: source)))
        }
    }
    Benchmark("Sessions: load and commit of a changed value") { benchmark in
        _ = try await store.create(id, record: created, expiresAt: now + .seconds(3600))
        let stack = sessions.wrapping(write)
        for _ in benchmark.scaledIterations {
            blackHole(
                try await stack.respond(to: ServerRequest(head: withCookie), context: BasicContext(source: source)))
        }
    }
}
