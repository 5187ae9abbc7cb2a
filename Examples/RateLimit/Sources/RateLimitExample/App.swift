import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataRateLimit
import StrataRateLimitRedis
import StrataRedis
import StrataServer
import Synchronization
import UnixSignals

/// The rate-limit example.
///
/// - `GET /api`: 5 requests/s with bursts of 10 per client (GCRA, "burst"), and 100 per sliding
///   minute ("minute").
/// - `GET /expensive`: the same quotas, 5 units a request.
/// - `GET /slow`: behind the adaptive concurrency limiter; a backend with 4 workers of 50 ms,
///   so latency rises with load and excess requests get 503.
/// - `GET /`: a page that fires requests and shows the fields and the refusals live.
///
/// `swift run RateLimitExample --port 8080 [--redis-url redis://127.0.0.1:6379]
/// [--trusted-proxy 10.0.0.0/8 ...]`. Instances started with the same `--redis-url` share
/// their quotas (a comma-separated list of URLs is a Redis Cluster's seed nodes); without it,
/// quotas live in memory.
@main
struct RateLimitExample {
    static func main() async throws {
        let port = Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080"
        guard let portNumber = Int(port) else {
            print("invalid port \(port)")
            exit(2)
        }
        var logger = Logger(label: "ratelimit-example")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        var services: [any Service] = []
        let store: any RateLimitStore
        let proxies: TrustedProxies?
        do {
            let cidrs = Self.options("--trusted-proxy")
            proxies = cidrs.isEmpty ? nil : try TrustedProxies(cidrs, header: .xForwardedFor)
            if let url = Self.option("--redis-url") ?? ProcessInfo.processInfo.environment["REDIS_URL"] {
                // A comma-separated list is the seed nodes of a Redis Cluster.
                let urls = url.split(separator: ",").map(String.init)
                var configuration =
                    urls.count > 1 ? try RedisConfiguration(clusterNodes: urls) : try RedisConfiguration(url: url)
                configuration.commandTimeout = .seconds(1)
                configuration.acquireTimeout = .seconds(1)
                let redis = RedisClient(configuration: configuration, logger: logger)
                services.append(redis)
                store = RedisRateLimitStore(client: redis, keyPrefix: "strata:ratelimit:example", timeout: .seconds(1))
                logger.info("quotas in Redis at \(url)")
            } else {
                store = MemoryRateLimitStore()
                logger.info("quotas in memory (give --redis-url to share them between instances)")
            }
        } catch {
            print("\(error)")
            exit(2)
        }
        // --daily-quota N: /api gets a single quota of N a day per client, so a test can
        // count exactly what several instances admit together.
        var policies: [QuotaPolicy<BasicContext>]?
        if let text = Self.option("--daily-quota") {
            guard let quota = Int(text), quota > 0 else {
                print("--daily-quota \(text): a positive number")
                exit(2)
            }
            policies = [QuotaPolicy(try .gcra("daily", limit: quota, per: .seconds(86_400)))]
        }
        let server = HTTPServer(
            responder: try buildResponder(store: store, trustedProxies: proxies, policies: policies, logger: logger),
            configuration: try HTTPServerConfiguration(port: portNumber),
            logger: logger
        )
        services.insert(server, at: 0)
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func option(_ name: String) -> String? {
        Self.options(name).last
    }

    static func options(_ name: String) -> [String] {
        let arguments = CommandLine.arguments
        return arguments.indices.dropLast().filter { arguments[$0] == name }.map { arguments[$0 + 1] }
    }
}

/// The example's quotas: 5/s with bursts of 10, and 100 per sliding minute, per client.
func examplePolicies() throws -> [QuotaPolicy<BasicContext>] {
    [
        QuotaPolicy(try .gcra("burst", limit: 5, per: .seconds(1), burst: 10)),
        QuotaPolicy(try .slidingWindow("minute", limit: 100, per: .seconds(60))),
    ]
}

/// The example's routes behind its limiters; tests reuse them.
func buildResponder(
    store: any RateLimitStore, trustedProxies: TrustedProxies? = nil,
    limiter: AdaptiveConcurrencyLimiter? = nil,
    backend: SlowBackend = SlowBackend(workers: 4, work: .milliseconds(50)),
    policies: [QuotaPolicy<BasicContext>]? = nil,
    logger: Logger
) throws -> some HTTPResponder<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(string: examplePage))
    }
    router.get("/api") { _, _ in json("{\"ok\": true}") }
    router.get("/expensive") { _, _ in json("{\"ok\": true, \"cost\": 5}") }
    router.get("/slow") { _, _ in
        try await backend.work()
        return json("{\"ok\": true}")
    }
    var configuration = RateLimitConfiguration<BasicContext>(trustedProxies: trustedProxies)
    configuration.skip = { request, _ in
        let path = request.head.path ?? "/"
        return !(path == "/api" || path.hasPrefix("/api?") || path == "/expensive" || path.hasPrefix("/expensive?"))
    }
    configuration.cost = { request, _ in (request.head.path ?? "").hasPrefix("/expensive") ? 5 : 1 }
    let quotas = try RateLimitMiddleware<BasicContext>(
        policies: try policies ?? examplePolicies(), store: store, configuration: configuration, logger: logger)
    let shedding = try ConcurrencyLimitMiddleware<BasicContext>(
        limiter: try limiter ?? AdaptiveConcurrencyLimiter(configuration: exampleAdaptiveConfiguration()),
        skip: { request, _ in !(request.head.path ?? "/").hasPrefix("/slow") })
    return MiddlewareStack(BasicContext.self) {
        quotas
        shedding
    }.wrapping(router)
}

/// A limiter that reacts within a fraction of a second, so the page shows it working.
func exampleAdaptiveConfiguration() -> AdaptiveConcurrencyLimiter.Configuration {
    var configuration = AdaptiveConcurrencyLimiter.Configuration()
    configuration.initialLimit = 20
    configuration.minimumLimit = 2
    configuration.maximumLimit = 200
    configuration.windowDuration = .milliseconds(250)
    configuration.samplesPerWindow = 5
    return configuration
}

/// A backend with a fixed number of workers: past them, requests queue, so latency grows with
/// load, which is what the adaptive limiter watches.
final class SlowBackend: Sendable {
    private let workers: AsyncSemaphore
    private let duration: Mutex<Duration>

    init(workers: Int, work: Duration) {
        self.workers = AsyncSemaphore(permits: workers)
        self.duration = Mutex(work)
    }

    /// How long one request keeps a worker.
    var workDuration: Duration {
        get { self.duration.withLock { $0 } }
        set { self.duration.withLock { $0 = newValue } }
    }

    func work() async throws {
        await self.workers.wait()
        defer { self.workers.signal() }
        let duration = self.workDuration
        if duration > .zero { try await Task.sleep(for: duration) }
    }
}

/// A counting semaphore for tasks, first come first served.
final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(permits: Int) {
        self.state = Mutex(State(permits: permits))
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLock { state -> Bool in
                if state.permits > 0 {
                    state.permits -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func signal() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

func json(_ text: String) -> ServerResponse {
    ServerResponse(
        status: .ok, headerFields: [.contentType: "application/json", .cacheControl: "no-store"],
        body: .init(string: text + "\n"))
}

let examplePage = """
    <!doctype html>
    <html><head><meta charset="utf-8"><title>Strata rate limiting</title>
    <style>
    body { font-family: system-ui, sans-serif; margin: 2em; }
    table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; font-family: monospace; }
    .refused { background: #fdd; } .shed { background: #ffd; }
    </style></head>
    <body>
    <h1>Strata rate limiting</h1>
    <p>
      <button id="one">GET /api</button>
      <button id="burst">20 × /api</button>
      <button id="expensive">GET /expensive (5 units)</button>
      <button id="slow">40 × /slow at once</button>
    </p>
    <p>Allowed: <span id="allowed">0</span> · Refused (429): <span id="refused">0</span> · Shed (503): <span id="shed">0</span></p>
    <p>RateLimit-Policy: <code id="policy"></code></p>
    <table><thead><tr><th>#</th><th>request</th><th>status</th><th>RateLimit</th><th>Retry-After</th></tr></thead>
    <tbody id="log"></tbody></table>
    <script>
    let count = 0;
    const tally = {allowed: 0, refused: 0, shed: 0};
    async function fire(path) {
      const response = await fetch(path, {cache: 'no-store'});
      const n = ++count;
      const kind = response.status === 429 ? 'refused' : response.status === 503 ? 'shed' : 'allowed';
      tally[kind]++;
      for (const key of Object.keys(tally)) document.getElementById(key).textContent = tally[key];
      const policy = response.headers.get('RateLimit-Policy');
      if (policy) document.getElementById('policy').textContent = policy;
      const row = document.createElement('tr');
      row.className = kind === 'allowed' ? '' : kind;
      for (const text of [n, path, response.status, response.headers.get('RateLimit') || '', response.headers.get('Retry-After') || '']) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.appendChild(cell);
      }
      document.getElementById('log').prepend(row);
      return response.status;
    }
    document.getElementById('one').onclick = () => fire('/api');
    document.getElementById('burst').onclick = async () => { for (let i = 0; i < 20; i++) await fire('/api'); };
    document.getElementById('expensive').onclick = () => fire('/expensive');
    document.getElementById('slow').onclick = () => Promise.all(Array.from({length: 40}, () => fire('/slow')));
    if (location.hash === '#burst') document.getElementById('burst').click();
    </script>
    </body></html>
    """
