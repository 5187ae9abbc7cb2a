import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataCache
import StrataCacheRedis
import StrataRedis
import StrataReverseProxy
import StrataServer
import UnixSignals

/// A caching reverse proxy: StrataCache in shared mode in front of StrataReverseProxy, and
/// nothing else, so an independent RFC 9111 test suite can be pointed at it.
///
/// `swift run CachingProxyExample --listen 127.0.0.1:8080 --origin http://127.0.0.1:9000`
///
/// - `--origin URL`: where misses go. Without it, a demo origin starts in process.
/// - `--redis-url URL` (repeat it, or pass `--redis-cluster`, for a cluster): entries in Redis,
///   shared with every instance pointed at it. Without it, a memory store.
/// - `--memory-bytes N` (default 256 MiB), `--max-entry-size N` (default 8 MiB).
/// - `--stale-if-error S`: serve stale this long when the origin fails (default 0).
/// - `--private`: a private cache instead of a shared one.
/// - `--purge`: `PURGE` from loopback addresses removes a URL (or, with `Cache-Tag`, tags).
@main
struct CachingProxyExample {
    static func main() async throws {
        var logger = Logger(label: "caching-proxy")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let listen =
            Self.option("--listen")
            ?? "127.0.0.1:\(Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080")"
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            print("--listen \(listen): expected host:port")
            exit(2)
        }
        var services: [any Service] = []
        do {
            var origin = Self.option("--origin")
            if origin == nil {
                let (demo, url) = try await DemoOrigin.start(logger: logger)
                services.append(demo)
                origin = url
                logger.info("no --origin given: caching a demo origin", metadata: ["origin": "\(url)"])
            }
            let proxy = try ReverseProxy<BasicContext>(
                configuration: ReverseProxyConfiguration(upstreams: [try Upstream(origin ?? "")]), logger: logger)
            let (store, redis) = try Self.store(logger: logger)
            if let redis { services.append(redis) }
            let cache = try HTTPCache(store: store, configuration: try Self.configuration(), logger: logger)
            let server = HTTPServer(
                responder: cache.responder(origin: proxy),
                configuration: try HTTPServerConfiguration(
                    host: String(listen[..<colon]), port: port, maxRequestBodySize: 1 << 30,
                    requestBodyTimeout: .seconds(300)),
                logger: logger
            )
            services.append(proxy)
            services.append(server)
        } catch {
            print("\(error)")
            exit(2)
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func configuration() throws -> HTTPCacheConfiguration {
        var configuration = HTTPCacheConfiguration()
        if CommandLine.arguments.contains("--private") { configuration.mode = .private }
        if let size = Self.option("--max-entry-size").flatMap(Int.init) { configuration.maximumEntrySize = size }
        if let seconds = Self.option("--stale-if-error").flatMap(Double.init) {
            configuration.staleIfError = .milliseconds(Int(seconds * 1000))
        }
        if CommandLine.arguments.contains("--purge") {
            configuration.purgeAuthorization = { _, peer in
                guard let ip = peer?.ipAddress else { return false }
                return ip == "127.0.0.1" || ip == "::1"
            }
        }
        return configuration
    }

    static func store(logger: Logger) throws -> (any CacheStore, RedisClient?) {
        let urls = Self.options("--redis-url")
        guard !urls.isEmpty else {
            let bytes = Self.option("--memory-bytes").flatMap(Int.init) ?? 256 << 20
            return (MemoryCacheStore(maximumBytes: bytes), nil)
        }
        let configuration =
            urls.count > 1 || CommandLine.arguments.contains("--redis-cluster")
            ? try RedisConfiguration(clusterNodes: urls) : try RedisConfiguration(url: urls[0])
        let client = RedisClient(configuration: configuration, logger: logger)
        let maximumBody = Self.option("--max-entry-size").flatMap(Int.init) ?? 8 << 20
        return (RedisCacheStore(client: client, maximumBodySize: maximumBody), client)
    }

    static func option(_ name: String) -> String? {
        Self.options(name).last
    }

    static func options(_ name: String) -> [String] {
        let arguments = CommandLine.arguments
        return arguments.indices.dropLast().filter { arguments[$0] == name }.map { arguments[$0 + 1] }
    }
}

/// The origin the example caches when it is given none: `/` and `/page/*` are fresh for a
/// minute, `/time` for two seconds with an `ETag`, `/private` is `private`.
enum DemoOrigin {
    static func start(logger: Logger) async throws -> (any Service, String) {
        let router = Router<BasicContext>()
        router.get("/time") { _, _ in
            let now = Int(Date().timeIntervalSince1970)
            return ServerResponse(
                status: .ok, headerFields: [.cacheControl: "max-age=2", .eTag: "\"\(now / 10)\""],
                body: ResponseBody(string: "origin time \(now)\n"))
        }
        router.get("/private") { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.cacheControl: "private, max-age=60"],
                body: ResponseBody(string: "yours only\n"))
        }
        router.get("/**") { request, _ in
            ServerResponse(
                status: .ok, headerFields: [.cacheControl: "public, max-age=60"],
                body: ResponseBody(string: "cached page \(request.head.path ?? "/")\n"))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = HTTPServer(
            responder: router,
            configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: 0),
            logger: logger,
            onServerRunning: { address in
                continuation.yield(address.port ?? 0)
                continuation.finish()
            }
        )
        let task = Task { try await server.run() }
        for await port in ports where port > 0 {
            return (TaskService(task: task), "http://127.0.0.1:\(port)")
        }
        throw CachingProxyError(description: "the demo origin did not start")
    }
}

struct CachingProxyError: Error, CustomStringConvertible {
    var description: String
}

/// A server task started early (to learn its port) that the service group then owns.
struct TaskService: Service {
    let task: Task<Void, any Error>

    func run() async throws {
        await withGracefulShutdownHandler {
            _ = await self.task.result
        } onGracefulShutdown: {
            self.task.cancel()
        }
    }
}
