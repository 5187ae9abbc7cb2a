import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
@_spi(Benchmarks) import StrataCache
import StrataReverseProxy
import StrataServer

// The floor of a caching proxy's miss, for `scripts/bench-cache.sh`: StrataReverseProxy with
// only the store's work around it, so what StrataCache does on a miss beyond the issue's "the
// proxy plus the store write" can be measured apart. `--mode`:
//   floor       after each answer, the store write alone (the origin's response as a
//               `CachedResponse`, written into a `MemoryCacheStore` under its URL)
//   lookup      the same, after a lookup of the URL in the store (answered from it when found)
//   rules       `lookup` plus the rules a miss must apply, StrataCache's own functions called in
//               line: the request's directives, the primary key, whether and how long to store
//               the response (RFC 9111 §3, §4.2), the stored fields, `Cache-Status`; the entry
//               they make is what is stored. No collapsing, no metrics, no HTTPCache around it.
//   cache       StrataCache itself in front of the proxy, built with the same flags
//   nocollapse  the same without request collapsing
// No policy, no collapsing and no `Cache-Status` in the first two.
//
//   ProxyStoreFloor --port 18296 --upstream http://127.0.0.1:18290 --mode lookup [--memory-bytes N]
//
// `--in-process N` runs no server: N misses (each a new URL) through `lookup`, `rules` and
// `cache`, in turn, with an origin in the process answering what nginx does in
// `scripts/bench-cache.sh` (the same fields and 13 bytes), and prints the time per miss of each
// and what the cache adds: the cache's own work on a miss, without the network's noise.
// `--only lookup` (`rules`, `cache`) runs one of them (for a profile of it alone).
//
//   ProxyStoreFloor --in-process 200000 [--rounds 5] [--memory-bytes N] [--mode nocollapse] [--only cache]

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap(Int.init) ?? 18296
let upstream = option("--upstream") ?? "http://127.0.0.1:18290"
let memoryBytes = option("--memory-bytes").flatMap(Int.init) ?? 256 << 20
let mode = option("--mode") ?? "floor"

struct UsageError: Error, CustomStringConvertible {
    var description: String
}
guard ["floor", "lookup", "rules", "cache", "nocollapse"].contains(mode) else {
    throw UsageError(description: "--mode \(mode): expected floor, lookup, rules, cache or nocollapse")
}

/// The proxy's answer, then the store write.
struct StoringResponder<Origin: HTTPResponder<BasicContext>>: HTTPResponder {
    let proxy: Origin
    let store: MemoryCacheStore
    /// Whether the store is read first, as a cache's lookup does.
    let looksUp: Bool

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        let key = "http://\(request.head.authority ?? "")\(request.head.path ?? "/")"
        if self.looksUp, let stored = try await self.store.variants(for: key).first, let body = stored.body {
            return ServerResponse(
                status: stored.status, headerFields: stored.headerFields, body: ResponseBody(buffer: body))
        }
        let sent = SystemWallClock().now()
        let response = try await self.proxy.respond(to: request, context: context)
        if let body = response.body.buffer {
            let received = SystemWallClock().now()
            let entry = CachedResponse(
                status: response.status, headerFields: response.head.headerFields, body: body,
                bodyLength: body.readableBytes, variantKey: "", requestTime: sent, responseTime: received, ageValue: 0,
                tags: [], storedUntil: received + .seconds(3600))
            try await self.store.store(entry, for: key)
        }
        return response
    }
}

/// `lookup` with the rules of a miss in line: the floor of any cache that applies them as
/// StrataCache does.
struct RulesResponder<Origin: HTTPResponder<BasicContext>>: HTTPResponder {
    let proxy: Origin
    let store: MemoryCacheStore
    let rules: HTTPCache

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        var request = request
        let directives = self.rules.requestRules(&request.head)
        let key = CacheKey.primary(for: request.head)
        if let stored = try await self.store.variants(for: key).first, let body = stored.body {
            return ServerResponse(
                status: stored.status, headerFields: stored.headerFields, body: ResponseBody(buffer: body))
        }
        let sent = SystemWallClock().now()
        var response = try await self.proxy.respond(to: request, context: context)
        if var entry = self.rules.responseRules(
            &response, to: request.head, requestDirectives: directives, requestTime: sent),
            let body = response.body.buffer
        {
            entry.body = body
            entry.bodyLength = body.readableBytes
            try await self.store.store(entry, for: key)
        }
        return response
    }
}

/// `--in-process`: the median time per miss of `lookup`, `rules` and `cache` over `rounds` rounds.
/// Runs off the main actor, so the misses run on one thread of the global executor without a hop.
@concurrent func measureInProcess(
    misses: Int, rounds: Int, memoryBytes: Int, configuration: HTTPCacheConfiguration, only: String?, logger: Logger
) async throws {
    let date = HTTPDate.format(secondsSince1970: SystemWallClock().now().secondsSince1970)
    let fields: HTTPFields = [
        .server: "nginx/1.22.1", .date: date, .contentType: "application/octet-stream",
        .lastModified: "Mon, 07 Dec 2026 07:00:05 GMT", .eTag: "\"6b165975-d\"", .cacheControl: "max-age=3600",
        .acceptRanges: "bytes",
    ]
    let body = ByteBuffer(string: "Hello, World!")
    let origin = ClosureResponder<BasicContext> { _, _ in
        ServerResponse(status: .ok, headerFields: fields, body: ResponseBody(buffer: body))
    }
    let context = BasicContext(source: ContextSource(logger: logger))
    var head = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1:18296", path: "/")
    head.headerFields = [.userAgent: "wrk"]
    var timings: [String: [Double]] = [:]
    var serial = 0
    for _ in 0..<rounds {
        for name in ["lookup", "rules", "cache"] where only == nil || only == name {
            let store = MemoryCacheStore(maximumBytes: memoryBytes)
            let responder: any HTTPResponder<BasicContext> =
                switch name {
                case "lookup": StoringResponder(proxy: origin, store: store, looksUp: true)
                case "rules":
                    RulesResponder(
                        proxy: origin, store: store, rules: try HTTPCache(store: store, configuration: configuration))
                default: try HTTPCache(store: store, configuration: configuration).responder(origin: origin)
                }
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<misses {
                serial += 1
                var request = head
                request.path = "/13?miss=\(serial)"
                let response = try await responder.respond(to: ServerRequest(head: request), context: context)
                guard response.status == .ok else { throw UsageError(description: "\(name): \(response.status)") }
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            timings[name, default: []].append(seconds / Double(misses) * 1e9)
        }
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    if let only {
        print("\(only) \(Int(median(timings[only] ?? [0]))) ns/miss (median of \(rounds) rounds of \(misses))")
        return
    }
    let lookup = median(timings["lookup"] ?? [0])
    let rules = median(timings["rules"] ?? [0])
    let cache = median(timings["cache"] ?? [0])
    print(
        "lookup \(Int(lookup)) ns/miss, rules \(Int(rules)) ns/miss, cache \(Int(cache)) ns/miss;"
            + " the rules add \(Int(rules - lookup)) ns, the cache \(Int(cache - lookup)) ns"
            + " (median of \(rounds) rounds of \(misses))")
}

let logger = {
    var logger = Logger(label: "proxy-store-floor")
    logger.logLevel = .warning
    return logger
}()
let proxy = try ReverseProxy<BasicContext>(
    configuration: ReverseProxyConfiguration(upstreams: [try Upstream(upstream)]), logger: logger)
let store = MemoryCacheStore(maximumBytes: memoryBytes)
var cacheConfiguration = HTTPCacheConfiguration()
if mode == "nocollapse" { cacheConfiguration.collapsesRequests = false }
@MainActor func serve(_ responder: some HTTPResponder<BasicContext>) async throws {
    let server = HTTPServer(
        responder: responder, configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port), logger: logger)
    let group = ServiceGroup(services: [proxy, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    try await group.run()
}
if let misses = option("--in-process").flatMap(Int.init) {
    try await measureInProcess(
        misses: misses, rounds: option("--rounds").flatMap(Int.init) ?? 5, memoryBytes: memoryBytes,
        configuration: cacheConfiguration, only: option("--only"), logger: logger)
} else if mode == "floor" || mode == "lookup" {
    try await serve(StoringResponder(proxy: proxy, store: store, looksUp: mode == "lookup"))
} else if mode == "rules" {
    try await serve(
        RulesResponder(
            proxy: proxy, store: store, rules: try HTTPCache(store: store, configuration: cacheConfiguration)))
} else {
    try await serve(try HTTPCache(store: store, configuration: cacheConfiguration).responder(origin: proxy))
}
