public import CoreMetrics
import HTTPTypes
public import Logging
public import Strata
import Synchronization

/// Sessions for the handlers behind it: loaded lazily, committed automatically, safe under
/// parallel requests, never adopted from the client.
///
/// - The session is reached through the context (`try context.session`) and loaded from the
///   store on first use: a request that never touches it costs no store call and sets no
///   cookie.
/// - After the handler, only the request's changes are sent to the store, which applies them
///   atomically: parallel requests that change different keys both survive, and
///   ``Session/update(_:_:)`` is a compare-and-swap for values they share. A request that
///   finishes after its session was destroyed never brings it back.
/// - IDs are 256 random bits; an ID the server did not issue starts nothing. An unknown,
///   expired, malformed or tampered cookie is treated as no session (logged at debug,
///   counted), never as an error.
/// - Every response of a request that used the session gets `Vary: Cookie`; one that sets the
///   cookie also gets `Cache-Control: no-cache="Set-Cookie"`. Both are merged with what the
///   handler set.
/// - When the store fails, the request gets `503` (or, with
///   ``SessionConfiguration/failOpen``, is served as anonymous and nothing is saved).
///
/// ```swift
/// let sessions = try SessionMiddleware<BasicContext>(store: MemorySessionStore())
/// ```
///
/// Several middlewares with different cookie names give a request several independent
/// sessions: `try context.session(named: "__Host-admin")`.
public struct SessionMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    let engine: SessionEngine

    /// Validates `configuration` and creates the middleware.
    ///
    /// - Parameters:
    ///   - store: Where sessions live.
    ///   - configuration: Cookie, timeouts and failure behaviour.
    ///   - codec: How values are encoded; compact JSON by default.
    ///   - clock: The time source for expiry (a `ManualClock` in tests).
    ///   - logger: Store failures at error, ignored cookies at debug.
    ///   - metricsFactory: swift-metrics factory; the bootstrapped one by default.
    /// - Throws: ``SessionConfigurationError`` listing every problem.
    public init(
        store: some SessionStore,
        configuration: SessionConfiguration = SessionConfiguration(),
        codec: some SessionCodec = JSONSessionCodec(),
        clock: some WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "strata.sessions"),
        metricsFactory: (any MetricsFactory)? = nil
    ) throws(SessionConfigurationError) {
        try self.init(
            store: store, sealer: nil, configuration: configuration, codec: codec, clock: clock, logger: logger,
            metricsFactory: metricsFactory)
    }

    /// Creates the middleware for sessions kept whole in their cookie, sealed by `sealer`
    /// (`StrataSessionsCookie`'s encrypted cookies). Such sessions need no store, but cannot
    /// be revoked or listed (``SessionError/Code/unsupportedByCookieStore``), and parallel
    /// requests do not merge: the cookie of the response that arrives last wins.
    ///
    /// - Throws: ``SessionConfigurationError`` listing every problem.
    public init(
        sealer: some SessionSealer,
        configuration: SessionConfiguration = SessionConfiguration(),
        codec: some SessionCodec = JSONSessionCodec(),
        clock: some WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "strata.sessions"),
        metricsFactory: (any MetricsFactory)? = nil
    ) throws(SessionConfigurationError) {
        // The store is never called when a sealer keeps the session.
        try self.init(
            store: MemorySessionStore(maxEntries: 1, maxBytes: 1), sealer: sealer, configuration: configuration,
            codec: codec, clock: clock, logger: logger, metricsFactory: metricsFactory)
    }

    private init(
        store: any SessionStore, sealer: (any SessionSealer)?, configuration: SessionConfiguration,
        codec: any SessionCodec, clock: any WallClock, logger: Logger, metricsFactory: (any MetricsFactory)?
    ) throws(SessionConfigurationError) {
        try configuration.validate()
        self.engine = SessionEngine(
            store: store, sealer: sealer, configuration: configuration, codec: codec, clock: clock, logger: logger,
            metrics: SessionMetrics(factory: metricsFactory))
    }

    /// The configuration in force.
    public var configuration: SessionConfiguration { self.engine.configuration }

    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        let session = Session(engine: self.engine, requestFields: request.headerFields)
        context.values.modify(SessionsValueKey.self) { sessions in
            sessions = (sessions ?? RequestSessions()).adding(session, named: self.engine.configuration.cookieName)
        }
        var response: ServerResponse
        do {
            response = try await next(request, context)
        } catch is SessionStoreUnavailableError {
            // Already logged and counted where the store failed; there is nothing to commit.
            return Self.unavailable()
        }
        guard session.touched.load(ordering: .relaxed) else { return response }
        do {
            try await session.commit()
        } catch let error as SessionStoreUnavailableError {
            if !self.engine.configuration.failOpen {
                response = Self.unavailable()
            } else {
                self.engine.logger.warning("session changes not saved", metadata: ["error": "\(error)"])
            }
        } catch {
            self.engine.logger.error("session changes not saved", metadata: ["error": "\(error)"])
            response = ServerResponse(error: error)
        }
        try await self.decorate(&response.headerFields, for: session)
        return response
    }

    private func decorate(_ fields: inout HTTPFields, for session: Session) async throws {
        let (cookie, wasRead) = await (session.cookie, session.wasRead)
        if wasRead || cookie != .none { fields.appendListElement("Cookie", to: .vary) }
        let configuration = self.engine.configuration
        switch cookie {
        case .none:
            return
        case .set(let id, let maxAge):
            fields.setCookie(try configuration.cookie(value: id.token, maxAge: maxAge))
        case .sealed(let value, let maxAge):
            fields.setCookie(try configuration.cookie(value: value, maxAge: maxAge))
        case .clear:
            fields.setCookie(try configuration.cookie(value: "", maxAge: 0))
        }
        fields.appendListElement("no-cache=\"Set-Cookie\"", to: .cacheControl)
    }

    private static func unavailable() -> ServerResponse {
        var response = ServerResponse(status: .serviceUnavailable, body: .init(string: "session store unavailable\n"))
        response.headerFields[.retryAfter] = "1"
        return response
    }
}

/// The sessions of one request, by cookie name, outermost middleware first.
struct RequestSessions: Sendable {
    var entries: [(name: String, session: Session)] = []

    func adding(_ session: Session, named name: String) -> RequestSessions {
        var copy = self
        copy.entries.append((name, session))
        return copy
    }
}

enum SessionsValueKey: RequestValueKey {
    typealias Value = RequestSessions
}

extension MiddlewareContext {
    /// The session of the (outermost) ``SessionMiddleware`` in front of this handler.
    ///
    /// - Throws: ``SessionError`` (`noSessionMiddleware`) when there is none.
    public var session: Session {
        get throws(SessionError) {
            guard let first = self.values[SessionsValueKey.self]?.entries.first else {
                throw SessionError(
                    code: .noSessionMiddleware, message: "no SessionMiddleware runs in front of this handler")
            }
            return first.session
        }
    }

    /// The session of the ``SessionMiddleware`` whose cookie is `cookieName`.
    ///
    /// - Throws: ``SessionError`` (`noSessionMiddleware`) when there is none.
    public func session(named cookieName: String) throws(SessionError) -> Session {
        guard let entry = self.values[SessionsValueKey.self]?.entries.first(where: { $0.name == cookieName }) else {
            throw SessionError(
                code: .noSessionMiddleware, message: "no SessionMiddleware with the cookie \(cookieName) runs here")
        }
        return entry.session
    }
}
