import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataRedis
import StrataServer
import StrataSessions
import StrataSessionsCookie
import StrataSessionsRedis
import UnixSignals

/// The sessions example: a login form, a page counter, a flash message shown once, the list of
/// the user's sessions with "log out everywhere", and logout.
///
/// `swift run SessionsExample --port 8080 --store memory` (or `--store redis --redis-url
/// redis://127.0.0.1:6379`, shared by every instance, or `--store cookie`, sealed into the
/// cookie with `SESSION_KEY`), then open http://localhost:8080/
/// (browsers treat `http://localhost` as secure, so the `__Host-` cookie works there).
@main
struct SessionsExample {
    static func main() async throws {
        let port = Self.option("--port") ?? ProcessInfo.processInfo.environment["PORT"] ?? "8080"
        let storeName = Self.option("--store") ?? "memory"
        let redisURL =
            Self.option("--redis-url") ?? ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379"
        guard let portNumber = Int(port) else {
            print("invalid port \(port)")
            exit(2)
        }
        var logger = Logger(label: "sessions-example")
        logger.logLevel =
            ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        var services: [any Service] = []
        let store: any SessionStore
        var sealer: EncryptedCookieSealer?
        switch storeName {
        case "memory":
            store = MemorySessionStore()
        case "cookie":
            // SESSION_KEY: a 256-bit key in base64url; without one, a key made at start (its
            // sessions end with the process).
            let key: SymmetricKey
            if let text = ProcessInfo.processInfo.environment["SESSION_KEY"], let bytes = Base64URL.decode(text),
                bytes.count == 32
            {
                key = SymmetricKey(data: bytes)
            } else {
                logger.notice("no SESSION_KEY (32 bytes, base64url): sealing with a key made at start")
                key = SymmetricKey(size: .bits256)
            }
            sealer = try EncryptedCookieSealer(keys: [key])
            store = MemorySessionStore(maxEntries: 1, maxBytes: 1)
        case "redis":
            do {
                var configuration = try RedisConfiguration(url: redisURL)
                configuration.commandTimeout = .seconds(1)
                configuration.acquireTimeout = .seconds(1)
                let redis = RedisClient(configuration: configuration, logger: logger)
                services.append(redis)
                store = RedisSessionStore(client: redis)
            } catch {
                print("\(error)")
                exit(2)
            }
        default:
            print("--store \(storeName): memory, redis or cookie")
            exit(2)
        }
        let server = HTTPServer(
            responder: try buildResponder(store: store, sealer: sealer, logger: logger),
            configuration: try HTTPServerConfiguration(port: portNumber),
            logger: logger
        )
        services.insert(server, at: 0)
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func option(_ name: String) -> String? {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
}

/// The user's name, set at login.
enum UserName: SessionKey {
    typealias Value = String
    static let name = "name"
}

/// The page counter, incremented atomically.
enum PageCount: SessionKey {
    typealias Value = Int
    static let name = "count"
}

/// The example's routes behind the session middleware; tests reuse them.
func buildResponder(
    store: any SessionStore, sealer: EncryptedCookieSealer? = nil,
    configuration: SessionConfiguration = SessionConfiguration(),
    clock: some WallClock = SystemWallClock(),
    logger: Logger
) throws -> some HTTPResponder<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/") { _, context in
        let session = try context.session
        let name = try await session.value(for: UserName.self)
        let count = try await session.value(for: PageCount.self) ?? 0
        let flash = try await session.takeFlash()
        let sessions = try await session.sessionsOfUser(orNoneFrom: sealer)
        let current = await session.handle
        return html(page(name: name, count: count, flash: flash, sessions: sessions, current: current))
    }
    router.post("/login") { request, context in
        let form = try await request.body.collect(upTo: 4096)
        let name = formField("name", in: String(buffer: form))?.trimmingCharacters(in: .whitespaces) ?? ""
        guard !name.isEmpty, name.count <= 64 else {
            return ServerResponse(status: .badRequest, body: .init(string: "a name of 1 to 64 characters\n"))
        }
        let session = try context.session
        try await session.authenticate(user: name)
        try await session.set(UserName.self, to: name)
        try await session.flash("Welcome, \(name)!")
        return redirect()
    }
    router.post("/logout") { _, context in
        try await context.session.destroy()
        return redirect()
    }
    router.post("/logout-everywhere") { _, context in
        guard sealer == nil else {
            return ServerResponse(
                status: .notImplemented,
                body: .init(string: "sessions kept in cookies cannot be revoked: use --store memory or redis\n"))
        }
        try await context.session.revokeAllSessions()
        return redirect()
    }
    router.post("/api/count") { _, context in
        let count = try await context.session.update(PageCount.self) { $0 = ($0 ?? 0) + 1 } ?? 0
        return json("{\"count\": \(count)}")
    }
    router.get("/api/session") { _, context in
        let session = try context.session
        let name = try await session.value(for: UserName.self)
        let count = try await session.value(for: PageCount.self) ?? 0
        let flash = try await session.takeFlash()
        return json("{\"name\": \(jsonString(name)), \"count\": \(count), \"flash\": \(jsonString(flash))}")
    }
    let sessions =
        try sealer.map {
            try SessionMiddleware<BasicContext>(sealer: $0, configuration: configuration, clock: clock, logger: logger)
        } ?? SessionMiddleware<BasicContext>(store: store, configuration: configuration, clock: clock, logger: logger)
    return MiddlewareStack(BasicContext.self) { sessions }.wrapping(router)
}

extension Session {
    /// The user's sessions, or none when they live in cookies (which cannot be listed).
    func sessionsOfUser(orNoneFrom sealer: EncryptedCookieSealer?) async throws -> [SessionSummary] {
        sealer == nil ? try await self.sessionsOfUser() : []
    }
}

func redirect() -> ServerResponse {
    ServerResponse(status: .seeOther, headerFields: [.location: "/"], body: .init(string: ""))
}

func html(_ text: String) -> ServerResponse {
    ServerResponse(
        status: .ok, headerFields: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
        body: .init(string: text))
}

func json(_ text: String) -> ServerResponse {
    ServerResponse(
        status: .ok, headerFields: [.contentType: "application/json", .cacheControl: "no-store"],
        body: .init(string: text))
}

/// One field of an `application/x-www-form-urlencoded` body.
func formField(_ field: String, in body: String) -> String? {
    for pair in body.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == field else { continue }
        return parts[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
    return nil
}

func jsonString(_ text: String?) -> String {
    guard let text else { return "null" }
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func escapeHTML(_ text: String) -> String {
    var out = ""
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

func page(name: String?, count: Int, flash: String?, sessions: [SessionSummary], current: String?) -> String {
    var body = ""
    if let flash { body += "<p id=\"flash\" class=\"flash\">\(escapeHTML(flash))</p>\n" }
    if let name {
        let rows = sessions.map { summary in
            let mark = summary.handle == current ? " (this one)" : ""
            let created = Date(timeIntervalSince1970: Double(summary.createdAt.secondsSince1970))
            return "<li class=\"session\">\(summary.handle)\(mark), since \(created)</li>"
        }.joined(separator: "\n")
        body += """
            <p>Signed in as <strong id="name">\(escapeHTML(name))</strong>.</p>
            <p>Count: <span id="count">\(count)</span> <button id="increment">+1</button></p>
            <h2>Your sessions</h2>
            <ul id="sessions">\(rows)</ul>
            <form method="post" action="/logout-everywhere"><button id="logout-everywhere">Log out everywhere</button></form>
            <form method="post" action="/logout"><button id="logout">Log out</button></form>
            <p id="cookie-visible">\("")</p>
            <script>
            document.getElementById('cookie-visible').textContent = 'document.cookie=' + JSON.stringify(document.cookie);
            document.getElementById('increment').onclick = async () => {
              const response = await fetch('/api/count', {method: 'POST'});
              document.getElementById('count').textContent = (await response.json()).count;
            };
            </script>
            """
    } else {
        body += """
            <form method="post" action="/login" id="login">
              <label>Name <input name="name" id="login-name" required maxlength="64"></label>
              <button>Log in</button>
            </form>
            """
    }
    return """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Strata sessions</title></head>
        <body>
        <h1>Strata sessions</h1>
        \(body)
        </body></html>
        """
}
