import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataCache
import StrataReverseProxy
import StrataServer

// The floor of a caching proxy's miss, for `scripts/bench-cache.sh`: StrataReverseProxy with
// only the store's work around it, so what StrataCache does on a miss beyond the issue's "the
// proxy plus the store write" can be measured apart. `--mode`:
//   floor       after each answer, the store write alone (the origin's response as a
//               `CachedResponse`, written into a `MemoryCacheStore` under its URL)
//   lookup      the same, after a lookup of the URL in the store (answered from it when found)
//   cache       StrataCache itself in front of the proxy, built with the same flags
//   nocollapse  the same without request collapsing
// No policy, no collapsing and no `Cache-Status` in the first two.
//
//   ProxyStoreFloor --port 18296 --upstream http://127.0.0.1:18290 --mode lookup [--memory-bytes N]

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
guard ["floor", "lookup", "cache", "nocollapse"].contains(mode) else {
    throw UsageError(description: "--mode \(mode): expected floor, lookup, cache or nocollapse")
}

/// The proxy's answer, then the store write.
struct StoringResponder: HTTPResponder {
    let proxy: ReverseProxy<BasicContext>
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
if mode == "floor" || mode == "lookup" {
    try await serve(StoringResponder(proxy: proxy, store: store, looksUp: mode == "lookup"))
} else {
    try await serve(try HTTPCache(store: store, configuration: cacheConfiguration).responder(origin: proxy))
}
