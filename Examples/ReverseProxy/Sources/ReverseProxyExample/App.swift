import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataReverseProxy
import StrataServer
import UnixSignals

/// The reverse-proxy example.
///
/// `swift run ReverseProxyExample --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9001
/// --upstream http://127.0.0.1:9002 --lb least-conn --health /health`
///
/// - Every request is proxied, except `GET /_proxy`: the upstreams, their health and counters,
///   as JSON.
/// - `--lb`: `round-robin` (default), `weighted`, `least-conn`, `p2c`, `first`, `hash-ip`,
///   `hash-uri`, `hash-header:NAME`, `hash-cookie:NAME`, `bounded-ip`.
/// - `--upstream URL[,weight=N]`, repeated. Without any, two demo upstreams start in process on
///   free ports, so the example runs with nothing else.
/// - `--health PATH` turns on active checks (`--health-interval` seconds, default 2).
/// - `--trusted-proxy CIDR` (repeated), `--via NAME`, `--forwarded` (also RFC 7239),
///   `--preserve-host`, `--retry-status 502,503`, `--max-body BYTES` (default 4 GiB),
///   `--response-head-timeout S`, `--idle-timeout S`, `--connect-timeout S`.
@main
struct ReverseProxyExample {
    static func main() async throws {
        var logger = Logger(label: "proxy-example")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        // `--port N` is short for `--listen 127.0.0.1:N`.
        let listen =
            Self.option("--listen")
            ?? "127.0.0.1:\(Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080")"
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            print("--listen \(listen): expected host:port")
            exit(2)
        }
        let host = String(listen[..<colon])
        var services: [any Service] = []
        var upstreams: [Upstream] = []
        do {
            for text in Self.options("--upstream") {
                let parts = text.split(separator: ",")
                var weight = 1
                for part in parts.dropFirst() where part.hasPrefix("weight=") {
                    weight = Int(part.dropFirst(7)) ?? 1
                }
                upstreams.append(try Upstream(String(parts.first ?? ""), weight: weight))
            }
            if upstreams.isEmpty {
                for index in 1...2 {
                    let (demo, url) = try await DemoUpstream.start(name: "upstream-\(index)", logger: logger)
                    services.append(demo)
                    upstreams.append(try Upstream(url))
                }
                logger.info(
                    "no --upstream given: proxying to two demo upstreams", metadata: ["upstreams": "\(upstreams)"])
            }
            let configuration = try Self.configuration(upstreams: upstreams)
            let proxy = try ReverseProxy<BasicContext>(configuration: configuration, logger: logger)
            let maxBody = Int(Self.option("--max-body") ?? "") ?? 4 << 30
            let server = HTTPServer(
                responder: ProxyApp(proxy: proxy),
                configuration: try HTTPServerConfiguration(
                    host: host, port: port, maxRequestBodySize: maxBody, requestBodyTimeout: .seconds(300)),
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

    static func configuration(upstreams: [Upstream]) throws -> ReverseProxyConfiguration {
        var configuration = ReverseProxyConfiguration(upstreams: upstreams)
        configuration.loadBalancing = try Self.policy(Self.option("--lb") ?? "round-robin")
        if let path = Self.option("--health") {
            let interval = Double(Self.option("--health-interval") ?? "") ?? 2
            configuration.activeHealthCheck = ActiveHealthCheck(
                path: path, interval: .milliseconds(Int(interval * 1000)), timeout: .seconds(1), passes: 1, fails: 1)
        }
        let cidrs = Self.options("--trusted-proxy")
        if !cidrs.isEmpty { configuration.trustedProxies = try TrustedProxies(cidrs, header: .xForwardedFor) }
        configuration.via = Self.option("--via")
        if CommandLine.arguments.contains("--forwarded") { configuration.forwarding = .all }
        if CommandLine.arguments.contains("--preserve-host") { configuration.host = .preserve }
        if let statuses = Self.option("--retry-status") {
            configuration.retries.retryOnStatuses = Set(statuses.split(separator: ",").compactMap { Int($0) })
        }
        if let seconds = Self.option("--response-head-timeout").flatMap(Double.init) {
            configuration.timeouts.responseHead = .milliseconds(Int(seconds * 1000))
        }
        if let seconds = Self.option("--idle-timeout").flatMap(Double.init) {
            configuration.timeouts.idle = .milliseconds(Int(seconds * 1000))
        }
        if let seconds = Self.option("--connect-timeout").flatMap(Double.init) {
            configuration.timeouts.connect = .milliseconds(Int(seconds * 1000))
        }
        return configuration
    }

    static func policy(_ name: String) throws -> LoadBalancingPolicy {
        switch name {
        case "round-robin": return .roundRobin
        case "weighted": return .weightedRoundRobin
        case "least-conn": return .leastConnections
        case "p2c": return .powerOfTwoChoices
        case "first": return .first
        case "hash-ip": return .consistentHash(.clientAddress)
        case "bounded-ip": return .consistentHash(.clientAddress, .boundedLoad(factor: 1.25))
        case "hash-uri": return .consistentHash(.uri)
        default:
            if name.hasPrefix("hash-header:"), let field = HTTPField.Name(String(name.dropFirst(12))) {
                return .consistentHash(.header(field))
            }
            if name.hasPrefix("hash-cookie:") { return .consistentHash(.cookie(String(name.dropFirst(12)))) }
            throw ExampleError(description: "--lb \(name): unknown policy")
        }
    }

    static func option(_ name: String) -> String? {
        Self.options(name).last
    }

    static func options(_ name: String) -> [String] {
        let arguments = CommandLine.arguments
        return arguments.indices.dropLast().filter { arguments[$0] == name }.map { arguments[$0 + 1] }
    }
}

struct ExampleError: Error, CustomStringConvertible {
    var description: String
}

/// `GET /_proxy` shows the upstreams; everything else goes through the proxy.
struct ProxyApp: HTTPResponder {
    let proxy: ReverseProxy<BasicContext>

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        if request.path == "/_proxy" && request.method == .get {
            return ServerResponse(
                status: .ok,
                headerFields: [.contentType: "application/json", .cacheControl: "no-store"],
                body: ResponseBody(string: statusJSON(self.proxy.status()))
            )
        }
        return try await self.proxy.respond(to: request, context: context)
    }
}

/// The status page's JSON.
func statusJSON(_ statuses: [UpstreamStatus]) -> String {
    func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
    let items = statuses.map { status in
        """
        {"upstream":\(quoted(status.upstream)),"available":\(status.available),"healthy":\(status.healthy),\
        "ejected":\(status.ejected),"circuit":\(quoted(status.circuit)),"active":\(status.activeRequests),\
        "requests":\(status.requests),"failures":\(status.failures),"retries":\(status.retries),\
        "open_connections":\(status.openConnections),"idle_connections":\(status.idleConnections),\
        "connections_opened":\(status.connectionsOpened),"last_error":\(status.lastError.map(quoted) ?? "null")}
        """
    }
    return "{\"upstreams\":[" + items.joined(separator: ",") + "]}\n"
}

/// A small upstream for the example run without `--upstream`: `/` names itself, `/health`
/// answers ok, `/events` streams a few server-sent events.
enum DemoUpstream {
    static func start(name: String, logger: Logger) async throws -> (any Service, String) {
        let router = Router<BasicContext>()
        router.get("/health") { _, _ in ServerResponse(status: .ok, body: ResponseBody(string: "ok\n")) }
        router.get("/events") { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    for index in 1...5 {
                        try await writer.write(ByteBuffer(string: "data: \(name) event \(index)\n\n"))
                        try await Task.sleep(for: .milliseconds(500))
                    }
                })
        }
        router.get("/**") { request, _ in
            ServerResponse(status: .ok, body: ResponseBody(string: "hello from \(name): \(request.head.path ?? "/")\n"))
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
        // The demo servers run in the service group; the port is known once each binds.
        let box = PortBox(server: server, ports: ports)
        return (box, try await box.waitForPort())
    }
}

/// Starts a demo server early to learn its port, then lets the service group own it.
final class PortBox: Service, Sendable {
    let server: HTTPServer<Router<BasicContext>>
    let ports: AsyncStream<Int>
    let task: Task<Void, any Error>

    init(server: HTTPServer<Router<BasicContext>>, ports: AsyncStream<Int>) {
        self.server = server
        self.ports = ports
        self.task = Task { try await server.run() }
    }

    func waitForPort() async throws -> String {
        for await port in self.ports where port > 0 { return "http://127.0.0.1:\(port)" }
        throw ExampleError(description: "a demo upstream did not start")
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            _ = await self.task.result
        } onGracefulShutdown: {
            self.task.cancel()
        }
    }
}
