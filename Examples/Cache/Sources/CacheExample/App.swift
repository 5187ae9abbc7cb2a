import Foundation
import HTTPTypes
public import Logging
import NIOCore
import ServiceLifecycle
public import Strata
public import StrataCache
public import StrataServer
import Synchronization
import UnixSignals

/// The HTTP cache example: `swift run CacheExample --port 8080`, then open
/// `http://127.0.0.1:8080/`.
///
/// Every route counts the requests that reached it (the `Origin-Hits` field), so what the cache
/// answered by itself shows:
///
/// - `/fresh`: `Cache-Control: public, max-age=30`.
/// - `/no-store`, `/private`: never stored.
/// - `/etag`: `no-cache` with an `ETag`: every use is revalidated, and the origin answers `304`.
/// - `/swr`: `max-age=2, stale-while-revalidate=30`: stale answers at once, refreshed in the
///   background.
/// - `/vary`: `Vary: Accept-Language`, one variant per language.
/// - `/slow`: one second of work, `max-age=10`: concurrent misses make one origin request.
/// - `/tagged`: `Cache-Tag: demo`; `PURGE /tagged` (from this machine) or `PURGE /` with
///   `Cache-Tag: demo` removes it.
/// - `/`: a page that requests each route twice and shows `Cache-Status`.
@main
struct CacheExample {
    static func main() async throws {
        var logger = Logger(label: "cache-example")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let port = Int(Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080") ?? 8080
        let server = HTTPServer(
            responder: try buildApplication(logger: logger),
            configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port),
            logger: logger
        )
        logger.info("open http://127.0.0.1:\(port)/")
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func option(_ name: String) -> String? {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
}

/// The cache, in front of the demo routes; PURGE is allowed from loopback addresses.
public func buildApplication(logger: Logger) throws -> HTTPCacheResponder<Router<BasicContext>> {
    var configuration = HTTPCacheConfiguration()
    configuration.purgeAuthorization = { _, peer in
        guard let ip = peer?.ipAddress else { return false }
        return ip == "127.0.0.1" || ip == "::1"
    }
    let cache = try HTTPCache(
        store: MemoryCacheStore(maximumBytes: 32 << 20), configuration: configuration, logger: logger)
    return cache.responder(origin: demoRoutes())
}

/// Counts the requests that reached each route.
final class OriginHits: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func next(_ route: String) -> String {
        self.counts.withLock { counts in
            counts[route, default: 0] += 1
            return String(counts[route]!)
        }
    }
}

func demoRoutes() -> Router<BasicContext> {
    let hits = OriginHits()
    let router = Router<BasicContext>()
    @Sendable func text(_ route: String, _ fields: HTTPFields, _ body: String) -> ServerResponse {
        var fields = fields
        fields[.contentType] = "text/plain; charset=utf-8"
        fields[HTTPField.Name("Origin-Hits")!] = hits.next(route)
        return ServerResponse(status: .ok, headerFields: fields, body: ResponseBody(string: body))
    }
    router.get("/") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(string: demoPage))
    }
    router.get("/fresh") { _, _ in
        text("/fresh", [.cacheControl: "public, max-age=30"], "fresh for 30 seconds\n")
    }
    router.get("/no-store") { _, _ in text("/no-store", [.cacheControl: "no-store"], "never stored\n") }
    router.get("/private") { _, _ in
        text("/private", [.cacheControl: "private, max-age=60"], "for one user only\n")
    }
    router.get("/etag") { request, _ in
        let etag = "\"v1\""
        if request.headerFields[.ifNoneMatch] == etag {
            var fields: HTTPFields = [.eTag: etag, .cacheControl: "no-cache"]
            fields[HTTPField.Name("Origin-Hits")!] = hits.next("/etag")
            return ServerResponse(status: .notModified, headerFields: fields)
        }
        return text("/etag", [.eTag: etag, .cacheControl: "no-cache"], "validated on every use\n")
    }
    router.get("/swr") { _, _ in
        text("/swr", [.cacheControl: "max-age=2, stale-while-revalidate=30"], "made at \(Date())\n")
    }
    router.get("/vary") { request, _ in
        let language = request.headerFields[.acceptLanguage] ?? "none"
        return text("/vary", [.cacheControl: "max-age=60", .vary: "Accept-Language"], "language: \(language)\n")
    }
    router.get("/slow") { _, _ in
        try await Task.sleep(for: .seconds(1))
        return text("/slow", [.cacheControl: "max-age=10"], "one second of work\n")
    }
    router.get("/tagged") { _, _ in
        text("/tagged", [.cacheControl: "max-age=300", .cacheTag: "demo"], "purge me by the tag demo\n")
    }
    return router
}

let demoPage = """
    <!doctype html>
    <html><head><meta charset="utf-8"><title>Strata cache</title>
    <style>body{font:15px system-ui;margin:2em}td,th{padding:.3em .8em;text-align:left}code{font-size:13px}</style>
    </head><body>
    <h1>Strata HTTP cache</h1>
    <p>Each route is requested twice; the second answer usually comes from the cache.</p>
    <table><thead><tr><th>route</th><th>first Cache-Status</th><th>second Cache-Status</th><th>origin hits</th></tr></thead>
    <tbody id="rows"></tbody></table>
    <script>
    const routes = ["/fresh", "/no-store", "/private", "/etag", "/swr", "/vary", "/slow", "/tagged"];
    async function probe(route) {
      const row = document.createElement("tr");
      const cells = [route];
      let hits = "";
      for (let i = 0; i < 2; i++) {
        // "no-store" keeps the browser's own cache out; a Cache-Control of our own stops the
        // browser from adding "no-cache", which would make every answer a revalidation.
        const response = await fetch(route, {cache: "no-store", headers: {"Cache-Control": "demo"}});
        await response.text();
        cells.push(response.headers.get("Cache-Status") || "");
        hits = response.headers.get("Origin-Hits") || hits;
      }
      cells.push(hits);
      for (const text of cells) {
        const cell = document.createElement("td");
        const code = document.createElement("code");
        code.textContent = text;
        cell.appendChild(code);
        row.appendChild(cell);
      }
      document.getElementById("rows").appendChild(row);
    }
    (async () => { for (const route of routes) await probe(route); document.body.dataset.done = "yes"; })();
    </script>
    </body></html>
    """
