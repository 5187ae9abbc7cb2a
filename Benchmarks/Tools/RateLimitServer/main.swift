import HTTPTypes
import Logging
import ServiceLifecycle
import Strata
import StrataRateLimit
import StrataRateLimitRedis
import StrataRedis
import StrataServer

// StrataServer for scripts/bench-ratelimit.sh: GET /hello ("Hello, World!") bare
// (`--mode bare`), behind a quota that never refuses in memory (`--mode memory`, the default;
// `memory-nofields` without the fields on allowed responses) or in Redis (`--mode redis
// --redis-url URL`); `bare-fields` adds the two fields, constant, with no limiter (the floor). The quota is keyed by client address and sends
// its RateLimit-Policy and RateLimit fields on every response.

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap(Int.init) ?? 8087
let mode = option("--mode") ?? "memory"
var logger = Logger(label: "ratelimit-bench")
logger.logLevel = .warning
var services: [any Service] = []
let router = Router<BasicContext>()
router.get("/hello") { _, _ in
    ServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: .init(string: "Hello, World!"))
}
let policies = [QuotaPolicy<BasicContext>(try .gcra("bench", limit: 1_000_000_000, per: .seconds(1)))]
let responder: any HTTPResponder<BasicContext>
switch mode {
case "bare":
    responder = router
case "bare-fields":
    // The floor of sending the fields: the same two fields, constant, added by a middleware
    // that decides nothing.
    responder = MiddlewareStack(BasicContext.self) { ConstantFields() }.wrapping(router)
case "memory-nofields":
    var configuration = RateLimitConfiguration<BasicContext>()
    configuration.headersOnAllowedResponses = false
    let limiter = try RateLimitMiddleware(
        policies: policies, store: MemoryRateLimitStore(), configuration: configuration, logger: logger)
    responder = MiddlewareStack(BasicContext.self) { limiter }.wrapping(router)
case "redis":
    let redis = RedisClient(
        configuration: try RedisConfiguration(url: option("--redis-url") ?? "redis://127.0.0.1:6379"), logger: logger)
    services.append(redis)
    let limiter = try RateLimitMiddleware(
        policies: policies, store: RedisRateLimitStore(client: redis, timeout: .seconds(1)), logger: logger)
    responder = MiddlewareStack(BasicContext.self) { limiter }.wrapping(router)
default:
    let limiter = try RateLimitMiddleware(policies: policies, store: MemoryRateLimitStore(), logger: logger)
    responder = MiddlewareStack(BasicContext.self) { limiter }.wrapping(router)
}

/// Adds `RateLimit-Policy` and `RateLimit` of the length the limiter sends, without deciding.
struct ConstantFields: HTTPMiddleware {
    typealias Context = BasicContext
    func handle(
        _ request: ServerRequest, context: BasicContext,
        next: (ServerRequest, BasicContext) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var response = try await next(request, context)
        response.head.headerFields.append(
            HTTPField(name: RateLimitHeaders.policyName, value: "\"bench\";q=1000000000;w=1"))
        response.head.headerFields.append(
            HTTPField(name: RateLimitHeaders.rateLimitName, value: "\"bench\";r=999999999;t=1"))
        return response
    }
}

/// Lets the server take one responder type whatever the mode.
struct AnyResponder: HTTPResponder {
    let responder: any HTTPResponder<BasicContext>
    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        try await self.responder.respond(to: request, context: context)
    }
}

let server = HTTPServer(
    responder: AnyResponder(responder: responder),
    configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port), logger: logger)
services.insert(server, at: 0)
try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
