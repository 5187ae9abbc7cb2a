import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
public import Strata
import Synchronization

/// Accepts WebSocket handshakes (RFC 6455 §4.2) and runs each connection.
///
/// ```swift
/// let echo = try WebSocketEndpoint()
/// router.get("/echo") { request, context in
///     echo.upgrade(request, context: context) { socket in
///         for try await message in socket.messages { try await socket.send(message) }
///     }
/// }
/// ```
public struct WebSocketEndpoint: Sendable {
    /// The validated configuration.
    public let configuration: WebSocketConfiguration

    /// - Throws: ``WebSocketConfigurationError`` listing every value out of range.
    public init(configuration: WebSocketConfiguration = .init()) throws(WebSocketConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Answers a handshake: `101 Switching Protocols` running `handler` on the connection, or
    /// the refusal (400 malformed, 403 origin refused, 426 not a WebSocket request or another
    /// version), which closes the connection.
    ///
    /// When `handler` returns the server closes with 1000; when it throws, with 1011. The
    /// connection is closed with 1001 on graceful server shutdown.
    public func upgrade(
        _ request: ServerRequest,
        context: some MiddlewareContext,
        handler: @escaping @Sendable (WebSocket) async throws -> Void
    ) -> ServerResponse {
        let accepted: Handshake
        switch Handshake.check(request.head, configuration: self.configuration) {
        case .success(let handshake):
            accepted = handshake
        case .failure(let refusal):
            context.logger.info(
                "refused a WebSocket handshake",
                metadata: ["status": "\(refusal.status.code)", "reason": "\(refusal.reason)"])
            var fields = refusal.fields
            fields.appendListElement("close", to: .connection)
            return ServerResponse(
                status: refusal.status, headerFields: fields, body: ResponseBody(string: refusal.reason + "\n"))
        }
        var fields: HTTPFields = [
            .upgrade: "websocket", .connection: "Upgrade", .secWebSocketAccept: accepted.accept,
        ]
        if let subprotocol = accepted.subprotocol { fields[.secWebSocketProtocol] = subprotocol }
        // permessage-deflate, when configured and offered. The zlib streams belong to the
        // connection, so they are made in its upgrade closure.
        var agreement: DeflateAgreement?
        if let deflate = self.configuration.compression {
            agreement = DeflateAgreement.negotiate(
                offers: request.headerFields[values: .secWebSocketExtensions], configuration: deflate)
            if let agreement { fields[.secWebSocketExtensions] = agreement.responseHeader }
        }
        var response = ServerResponse(status: .switchingProtocols, headerFields: fields)
        let configuration = self.configuration
        let head = request.head
        let agreed = agreement
        response.upgrade = ConnectionUpgrade { connection in
            var compression: (deflater: MessageDeflater, inflater: MessageInflater)?
            if let agreed, let deflate = configuration.compression {
                do {
                    compression = (
                        try MessageDeflater(agreement: agreed, configuration: deflate),
                        try MessageInflater(agreement: agreed)
                    )
                } catch {
                    // The client was promised compression: without zlib there is no connection.
                    connection.logger.error("zlib refused a permessage-deflate stream", metadata: ["error": "\(error)"])
                    connection.outbound.finish()
                    return
                }
            }
            let socket = WebSocket(
                connection: connection, request: head, subprotocol: accepted.subprotocol, configuration: configuration,
                compression: compression)
            await Self.run(socket, handler: handler)
        }
        return response
    }

    /// Runs the handler next to the supervisor (pings, deadlines); whichever ends first ends
    /// the other.
    static func run(_ socket: WebSocket, handler: @escaping @Sendable (WebSocket) async throws -> Void) async {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await handler(socket)
                        await socket.close(.normalClosure)
                    } catch {
                        if !(error is WebSocketClosedError) && !(error is WebSocketSlowConsumerError)
                            && !Task.isCancelled
                        {
                            socket.logger.error("WebSocket handler failed", metadata: ["error": "\(error)"])
                            await socket.close(.internalError)
                        } else {
                            await socket.close(.normalClosure)
                        }
                    }
                    // Wait for the client's close, discarding what comes before it.
                    while !socket.state.withLock({ $0.closeReceived || $0.abandoned }) {
                        guard (try? await socket.reader.next(socket)) != nil else { break }
                    }
                }
                group.addTask {
                    await Supervisor(socket: socket).run()
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            Task { await socket.close(.goingAway, reason: "server shutting down") }
        }
        socket.outbound.finish()
    }
}

/// Pings a quiet client and enforces the pong, idle and close deadlines.
struct Supervisor {
    let socket: WebSocket

    func run() async {
        let configuration = self.socket.configuration
        let shortest =
            [
                configuration.pingInterval, configuration.pongTimeout, configuration.idleTimeout,
                configuration.closeTimeout,
            ].compactMap { $0 }.min() ?? .seconds(1)
        let tick = min(max(shortest / 4, .milliseconds(10)), .seconds(1))
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            guard !Task.isCancelled else { return }
            let now = ContinuousClock.now
            enum Action {
                case none, ping, closeIdle
                case abandon(String)
            }
            let action = self.socket.state.withLock { state -> Action in
                if let deadline = state.closeDeadline, now >= deadline {
                    return .abandon("no close frame from the client in time")
                }
                if let interval = configuration.pingInterval {
                    if let sent = state.pingSentAt, state.lastHeard < sent {
                        if now - sent >= configuration.pongTimeout {
                            return .abandon("no pong from the client in time")
                        }
                    } else if now - state.lastHeard >= interval {
                        state.pingSentAt = now
                        return .ping
                    }
                }
                if let idle = configuration.idleTimeout, !state.closeSent, now - state.lastData >= idle {
                    return .closeIdle
                }
                return .none
            }
            switch action {
            case .none:
                continue
            case .ping:
                _ = try? await self.socket.write(
                    .control(FrameWriter.control(.ping, payload: ByteBuffer(string: "strata"))), size: 0)
            case .closeIdle:
                self.socket.logger.debug("closing an idle WebSocket")
                await self.socket.close(.goingAway, reason: "idle")
            case .abandon(let why):
                self.socket.logger.info("dropping a WebSocket connection", metadata: ["reason": "\(why)"])
                self.socket.state.withLock { state in
                    state.abandoned = true
                    if state.closeReason == nil {
                        state.closeReason = WebSocketCloseReason(
                            code: .abnormalClosure, reason: why, initiatedByServer: true)
                    }
                }
                return
            }
        }
    }
}

/// An accepted handshake.
struct Handshake {
    let accept: String
    let subprotocol: String?

    struct Refusal: Error {
        let status: HTTPResponse.Status
        let reason: String
        var fields: HTTPFields = [:]
    }

    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    static func check(_ head: HTTPRequest, configuration: WebSocketConfiguration) -> Result<Handshake, Refusal> {
        let fields = head.headerFields
        guard fields.containsListElement("websocket", in: .upgrade) else {
            return .failure(
                Refusal(
                    status: .upgradeRequired, reason: "This endpoint speaks WebSocket only",
                    fields: [.upgrade: "websocket", .secWebSocketVersion: "13"]))
        }
        guard head.method == .get else {
            return .failure(Refusal(status: .badRequest, reason: "A WebSocket handshake is a GET"))
        }
        guard fields.containsListElement("upgrade", in: .connection) else {
            return .failure(Refusal(status: .badRequest, reason: "Connection must include upgrade"))
        }
        guard fields[values: .secWebSocketVersion] == ["13"] else {
            return .failure(
                Refusal(
                    status: .upgradeRequired, reason: "Only WebSocket version 13 is supported",
                    fields: [.upgrade: "websocket", .secWebSocketVersion: "13"]))
        }
        let keys = fields[values: .secWebSocketKey]
        guard keys.count == 1, let key = keys.first.map({ String(Substring($0).trimmingOWS()) }),
            Base64.decode(key)?.count == 16
        else {
            return .failure(Refusal(status: .badRequest, reason: "Sec-WebSocket-Key must be 16 bytes in base64"))
        }
        if let refusal = Self.checkOrigin(head, policy: configuration.originPolicy) { return .failure(refusal) }
        let accept = Base64.encode(SHA1.hash(Array((key + Self.guid).utf8)))
        return .success(Handshake(accept: accept, subprotocol: Self.subprotocol(fields, configuration: configuration)))
    }

    /// The server's most preferred subprotocol the client offered, if any.
    static func subprotocol(_ fields: HTTPFields, configuration: WebSocketConfiguration) -> String? {
        let offered = fields.listElements(.secWebSocketProtocol)
        return configuration.subprotocols.first { name in offered.contains { $0 == name } }
    }

    static func checkOrigin(_ head: HTTPRequest, policy: WebSocketOriginPolicy) -> Refusal? {
        let values = head.headerFields[values: .origin]
        // Non-browser clients send no Origin; browsers always do, and that is what the policy is for.
        guard let value = values.first else { return nil }
        if case .any = policy.kind { return nil }
        let refusal = Refusal(status: .forbidden, reason: "Origin \(value) may not open this WebSocket")
        guard values.count == 1, let origin = Origin(value) else { return refusal }
        if Self.isSameOrigin(origin, authority: head.authority) { return nil }
        if case .allowList(let matcher) = policy.kind, matcher.allows(origin) { return nil }
        return refusal
    }

    /// Whether `origin` names the host and port the request was sent to.
    static func isSameOrigin(_ origin: Origin, authority: String?) -> Bool {
        guard let authority, !authority.isEmpty else { return false }
        var host = Substring(authority)
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let rest = host[host.index(after: close)...]
            host = host[...close]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) }
        } else if let colon = host.lastIndex(of: ":") {
            port = Int(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        guard host.equalsIgnoringASCIICase(origin.host) else { return false }
        return (port ?? Origin.defaultPort(origin.scheme)) == origin.effectivePort
    }
}
