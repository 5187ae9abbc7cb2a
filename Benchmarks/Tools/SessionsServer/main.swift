import Logging
import ServiceLifecycle
import Strata
import StrataRedis
import StrataServer
import StrataSessions
import StrataSessionsRedis

// StrataServer + StrataSessions for scripts/bench-sessions.sh, with the memory store or
// (`--store redis --redis-url URL`) the Redis store. GET /count reads the session's counter and
// writes it back plus one, as the peers do; GET /plain never touches the session.

enum Counter: SessionKey {
    typealias Value = Int
    static let name = "count"
}

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap(Int.init) ?? 8086
var logger = Logger(label: "sessions-bench")
logger.logLevel = .warning
var services: [any Service] = []
let store: any SessionStore
if option("--store") == "redis" {
    let redis = RedisClient(
        configuration: try RedisConfiguration(url: option("--redis-url") ?? "redis://127.0.0.1:6379"), logger: logger)
    services.append(redis)
    store = RedisSessionStore(client: redis)
} else {
    store = MemorySessionStore()
}
let router = Router<BasicContext>()
router.get("/count") { _, context in
    let session = try context.session
    let count = (try await session.value(for: Counter.self) ?? 0) + 1
    try await session.set(Counter.self, to: count)
    return ServerResponse(status: .ok, body: .init(string: "\(count)"))
}
router.get("/plain") { _, _ in ServerResponse(status: .ok, body: .init(string: "plain")) }
let sessions = try SessionMiddleware<BasicContext>(store: store, logger: logger)
let server = HTTPServer(
    responder: MiddlewareStack(BasicContext.self) { sessions }.wrapping(router),
    configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port), logger: logger)
services.insert(server, at: 0)
try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
