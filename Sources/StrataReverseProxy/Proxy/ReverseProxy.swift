import CoreMetrics
public import HTTPTypes
public import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
public import Strata
import Synchronization
public import Tracing

#if TLS
import NIOSSL
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A streaming reverse proxy: a responder that forwards each request to one of its upstreams.
///
/// Use it as the whole app or as a route's handler; any Strata middleware in front of it works
/// unchanged (rate limiting, caching, compression). Run it as a `Service` for active health
/// checks; without that, passive health still works.
///
/// ```swift
/// var configuration = ReverseProxyConfiguration(upstreams: [try Upstream("http://127.0.0.1:9001")])
/// configuration.loadBalancing = .leastConnections
/// let proxy = try ReverseProxy<BasicContext>(configuration: configuration)
/// let server = HTTPServer(responder: proxy, configuration: .init(port: 8080), logger: logger)
/// let group = ServiceGroup(services: [proxy, server], logger: logger)
/// ```
public final class ReverseProxy<Context: MiddlewareContext>: HTTPResponder, Service, Sendable {
    /// Edits the outbound request; may throw an `HTTPResponseError` to answer instead.
    public typealias Rewrite = @Sendable (inout ProxyRequest) throws -> Void
    /// Edits the upstream's response head (its fields are already cleaned of hop-by-hop ones).
    public typealias ModifyResponse = @Sendable (inout HTTPResponse, ProxyRequest) throws -> Void
    /// Turns a failure into the client's answer.
    public typealias ErrorHandler = @Sendable (ProxyError, ServerRequest) -> ServerResponse

    let configuration: ReverseProxyConfiguration
    private let hooks: Hooks
    private let upstreamSet: Mutex<UpstreamSet>
    /// The upstreams as given, before any re-resolution expanded their names.
    private let declared: Mutex<[Upstream]>
    private let counter = Atomic<UInt64>(0)
    private let random: RandomSource
    private let logger: Logger
    private let settings: UpstreamPool.Settings
    /// `nil` when tracing is off (the no-op tracer): no span is made at all.
    private let tracer: (any Tracer)?

    struct Hooks: Sendable {
        var rewrite: Rewrite?
        var modifyResponse: ModifyResponse?
        var errorHandler: ErrorHandler?
    }

    /// Creates a proxy.
    ///
    /// - Parameters:
    ///   - configuration: Upstreams, policies and limits; validated here.
    ///   - rewrite: Edits each outbound request.
    ///   - modifyResponse: Edits each response head.
    ///   - errorHandler: Answers failures; the default answers 502, 503 or 504 with a short
    ///     body and logs the cause.
    ///   - logger: For the proxy's own events (health changes, checks).
    ///   - tracer: Makes a client span per upstream attempt and injects its context into the
    ///     outbound fields (W3C `traceparent` with an OpenTelemetry tracer). Defaults to the
    ///     bootstrapped `InstrumentationSystem.tracer`, read once here.
    public init(
        configuration: ReverseProxyConfiguration,
        rewrite: Rewrite? = nil,
        modifyResponse: ModifyResponse? = nil,
        errorHandler: ErrorHandler? = nil,
        logger: Logger = Logger(label: "strata.proxy"),
        tracer: (any Tracer)? = nil
    ) throws {
        try configuration.validate()
        let tracer = tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
        self.configuration = configuration
        self.hooks = Hooks(rewrite: rewrite, modifyResponse: modifyResponse, errorHandler: errorHandler)
        self.random = RandomSource(seed: configuration.randomSeed)
        self.logger = logger
        let timeouts = configuration.timeouts
        let shortest =
            [timeouts.responseHead, timeouts.idle, timeouts.total ?? timeouts.idle, configuration.poolIdleTimeout]
            .min() ?? .seconds(1)
        let tick = min(max(TimeAmount(shortest).nanoseconds / 10, 5_000_000), 1_000_000_000)
        self.settings = UpstreamPool.Settings(
            maxConnections: configuration.maxConnectionsPerUpstream,
            connectTimeout: TimeAmount(timeouts.connect),
            handlerTimeouts: UpstreamChannelHandler.Timeouts(
                responseHead: TimeAmount(timeouts.responseHead),
                idle: TimeAmount(timeouts.idle),
                tick: .nanoseconds(tick),
                poolIdle: TimeAmount(configuration.poolIdleTimeout)
            ),
            limits: ResponseParserLimits(maxHeadSize: configuration.maxResponseHeadSize),
            tls: try Self.tls(configuration)
        )
        self.upstreamSet = Mutex(UpstreamSet(nodes: [], needsRing: false))
        self.declared = Mutex(configuration.upstreams)
        self.apply(configuration.upstreams)
    }

    /// The TLS context for `https://` upstreams, made once; `nil` without the `TLS` trait.
    private static func tls(_ configuration: ReverseProxyConfiguration) throws -> UpstreamTLS? {
        #if TLS
        return UpstreamTLS(context: try NIOSSLContext(configuration: configuration.tlsConfiguration))
        #else
        return nil
        #endif
    }

    // MARK: - Upstreams

    /// Replaces the upstream set. Upstreams that stay keep their connections, health and
    /// counters; those that leave finish their requests in flight and close.
    ///
    /// With ``ReverseProxyConfiguration/resolveInterval`` set, host names in `upstreams` are
    /// expanded into their addresses at the next resolution.
    public func update(upstreams: [Upstream]) {
        self.declared.withLock { $0 = upstreams }
        self.apply(upstreams)
    }

    private func apply(_ upstreams: [Upstream]) {
        let needsRing: Bool
        if case .consistentHash = self.configuration.loadBalancing { needsRing = true } else { needsRing = false }
        let removed = self.upstreamSet.withLock { current -> [UpstreamNode] in
            var reused: [UpstreamNode] = []
            var nodes: [UpstreamNode] = []
            for upstream in upstreams {
                if let node = current.nodes.first(where: { $0.upstream == upstream }) {
                    nodes.append(node)
                    reused.append(node)
                } else {
                    nodes.append(
                        UpstreamNode(
                            upstream: upstream,
                            pool: UpstreamPool(upstream: upstream, settings: self.settings),
                            passive: self.configuration.passiveHealthCheck,
                            breaker: self.configuration.circuitBreaker
                        ))
                }
            }
            let removed = current.nodes.filter { old in !reused.contains { $0 === old } }
            current = UpstreamSet(nodes: nodes, needsRing: needsRing)
            return removed
        }
        for node in removed { node.pool.shutdown() }
    }

    /// The upstreams in use, with their health and counters (for a status page).
    public func status() -> [UpstreamStatus] {
        let now = NIODeadline.now()
        return self.currentSet.nodes.map { $0.status(now: now) }
    }

    private var currentSet: UpstreamSet { self.upstreamSet.withLock { $0 } }

    // MARK: - Service

    /// Runs the active health checks and the re-resolution of host names until graceful
    /// shutdown, then closes the pools.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let check = self.configuration.activeHealthCheck {
                    group.addTask { await self.runHealthChecks(check) }
                }
                if let interval = self.configuration.resolveInterval {
                    group.addTask { await self.runResolution(every: interval) }
                }
                group.addTask {
                    // Keeps the service alive when it has nothing else to run.
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                }
            }
        }
        for node in self.currentSet.nodes { node.pool.shutdown() }
    }

    private func runResolution(every interval: Duration) async {
        while !Task.isCancelled {
            let declared = self.declared.withLock { $0 }
            var expanded: [Upstream] = []
            for upstream in declared {
                guard let (name, port) = upstream.hostName else {
                    expanded.append(upstream)
                    continue
                }
                let addresses = await Self.resolve(name)
                if addresses.isEmpty {
                    // Resolution failed: keep the name, resolved per connection meanwhile.
                    self.logger.warning("could not resolve an upstream", metadata: ["host": "\(name)"])
                    expanded.append(upstream)
                } else {
                    expanded += addresses.map { Upstream(resolving: upstream, to: $0, port: port) }
                }
            }
            if expanded != self.currentSet.nodes.map(\.upstream) { self.apply(expanded) }
            try? await Task.sleep(for: interval)
        }
    }

    /// The IPv4 and IPv6 addresses of `name` (getaddrinfo, on NIO's blocking-I/O pool), sorted.
    static func resolve(_ name: String) async -> [String] {
        (try? await NIOThreadPool.singleton.runIfActive { () -> [String] in
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, nil, &hints, &list) == 0 else { return [] }
            defer { freeaddrinfo(list) }
            var addresses: Set<String> = []
            var entry = list
            while let info = entry?.pointee {
                if let address = info.ai_addr {
                    var text = [CChar](repeating: 0, count: 64)
                    if info.ai_family == AF_INET {
                        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                            var raw = ipv4.pointee.sin_addr
                            _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                        }
                    } else if info.ai_family == AF_INET6 {
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                            var raw = ipv6.pointee.sin6_addr
                            _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                        }
                    }
                    let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if !string.isEmpty { addresses.insert(string) }
                }
                entry = info.ai_next
            }
            return addresses.sorted()
        }) ?? []
    }

    private func runHealthChecks(_ check: ActiveHealthCheck) async {
        while !Task.isCancelled {
            let nodes = self.currentSet.nodes
            await withTaskGroup(of: Void.self) { group in
                for node in nodes {
                    group.addTask { await self.check(node, policy: check) }
                }
            }
            try? await Task.sleep(for: check.interval)
        }
    }

    private func check(_ node: UpstreamNode, policy: ActiveHealthCheck) async {
        let eventLoop = self.configuration.eventLoopGroup.any()
        var healthy = false
        var failure: String?
        do {
            let timeout = TimeAmount(policy.timeout)
            let connection = try await UpstreamConnection.connect(
                to: node.upstream,
                eventLoop: eventLoop,
                connectTimeout: timeout,
                timeouts: .init(responseHead: timeout, idle: timeout, tick: .milliseconds(50), poolIdle: timeout),
                limits: self.settings.limits,
                tls: self.settings.tls
            )
            defer { connection.close() }
            try await connection.beginExchange(isHead: false, upgrades: false, total: timeout)
            var head = ByteBuffer()
            HeaderRules.encodeHead(
                method: .get, target: node.upstream.basePath + policy.path, authority: node.upstream.authority,
                fields: [.connection: "close"], contentLength: nil, chunked: false, upgrade: nil, into: &head)
            connection.send(head)
            try await connection.requestEnded()
            while let part = try await connection.next() {
                if case .head(let response, _) = part, response.status.code >= 200 {
                    healthy = policy.expectedStatus.contains(response.status.code)
                    if !healthy { failure = "health check status \(response.status.code)" }
                    break
                }
            }
        } catch {
            failure = "health check: \(error)"
        }
        if let changed = node.recordCheck(healthy: healthy, policy: policy, error: failure) {
            node.metrics.health(changed)
            self.logger.notice(
                changed ? "upstream healthy again" : "upstream unhealthy",
                metadata: ["upstream": "\(node.upstream)", "reason": "\(failure ?? "checks pass")"])
        }
    }

    // MARK: - Requests

    /// Forwards `request` to an upstream and answers with its response, streamed.
    ///
    /// Failures become the error handler's answer (502, 503 or 504 by default); a refused
    /// `CONNECT` (405) or a target that cannot go on the wire (400) is thrown as an
    /// `HTTPError`, as is whatever the rewrite hook throws.
    public func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse {
        guard request.method != .connect else {
            throw HTTPError(.methodNotAllowed, message: "CONNECT is not proxied")
        }
        let started = NIODeadline.now()
        let peer = context.remoteAddress?.ipAddress.flatMap { IPAddress($0) }
        let trusted = self.configuration.trustedProxies
        let peerTrusted = peer.map { trusted?.isTrusted($0) ?? false } ?? false
        let clientAddress =
            peerTrusted
            ? (trusted?.clientAddress(peer: context.remoteAddress, headerFields: request.headerFields) ?? peer) : peer

        // Outbound head: hop-by-hop first, then the proxy's own fields.
        var outbound = request.head
        var fields = outbound.headerFields
        let wantsUpgrade = self.upgradeToken(of: request.head)
        let teTrailers = HeaderRules.removeHopByHop(&fields, alsoRemove: [.contentLength, .expect])
        if teTrailers { fields[.te] = "trailers" }
        HeaderRules.setForwarding(
            &fields, peer: peer, peerTrusted: peerTrusted, host: request.head.authority,
            proto: request.head.scheme ?? "http", kinds: self.configuration.forwarding, via: self.configuration.via)
        outbound.headerFields = fields
        var proxyRequest = ProxyRequest(inbound: request.head, clientAddress: clientAddress, outbound: outbound)
        if let rewrite = self.hooks.rewrite { try rewrite(&proxyRequest) }
        guard HeaderRules.isSafeTarget(proxyRequest.outbound.path ?? "/") else {
            throw HTTPError(.badRequest, message: "The request target cannot be forwarded")
        }

        // The body: none, replayable (read first, bounded), or streamed once.
        let body: OutboundBody
        let expectsContinue = request.headerFields[.expect]?.equalsIgnoringASCIICase("100-continue") ?? false
        if let buffer = request.body.buffer {
            body = buffer.readableBytes == 0 && request.body.expectedLength == 0 ? .none : .replayable(buffer)
        } else if let length = request.body.expectedLength, length <= self.configuration.retries.replayBufferSize,
            !expectsContinue
        {
            body = .replayable(try await request.body.collect(upTo: self.configuration.retries.replayBufferSize))
        } else {
            body = .stream(request.body, length: request.body.expectedLength, expectContinue: expectsContinue)
        }

        let idempotent = Self.isIdempotent(request.method)
        let set = self.currentSet
        let hashKey = self.hashKey(for: request, clientAddress: clientAddress)
        var tried: [UpstreamNode] = []
        var lastError: ProxyError?
        // A retryable answer given up for a retry: still the answer if no other upstream is left.
        var lastAnswer: ServerResponse?
        var attempt = 0
        while true {
            let now = NIODeadline.now()
            guard
                let (node, admission) = self.pick(in: set, for: proxyRequest, key: hashKey, excluding: tried, now: now)
            else {
                if let lastAnswer { return lastAnswer }
                let error =
                    lastError
                    ?? ProxyError(
                        kind: .noUpstream, upstream: proxyRequest.upstream, detail: "no upstream is available")
                return self.errorResponse(error, request: request, context: context)
            }
            if attempt > 0 {
                node.retries.add(1, ordering: .relaxed)
                node.metrics.retries.increment()
            }
            let canRetry = self.mayRetry(attempt: attempt, started: started)
            // A status is retried only when a retry can follow, on another available upstream:
            // otherwise this attempt relays its answer whole.
            let statusRetry =
                idempotent && body.isReplayable && canRetry && !self.configuration.retries.retryOnStatuses.isEmpty
                && proxyRequest.upstream == nil
                && set.nodes.contains { other in
                    other !== node && !tried.contains { $0 === other } && other.isAvailable(now: now)
                }
            let plan = AttemptPlan(
                proxyRequest: proxyRequest, body: body, upgrade: wantsUpgrade, teTrailers: teTrailers,
                mayRetryStatus: statusRetry)
            let result = await self.attempt(plan, node: node, admission: admission, context: context)
            // Why to try another upstream, or the answer when not.
            let reason: String
            switch result {
            case .response(let response):
                return response
            case .retryableStatus(let response, let status):
                lastAnswer = response
                lastError = nil
                reason = "status \(status)"
            case .failed(let error, let sent):
                lastError = error
                lastAnswer = nil
                let safe = !sent || (idempotent && body.isReplayable)
                guard safe && canRetry else {
                    return self.errorResponse(error, request: request, context: context)
                }
                reason = error.kind.rawValue
            }
            context.logger.info(
                "retrying on another upstream", metadata: ["upstream": "\(node.upstream)", "reason": "\(reason)"])
            tried.append(node)
            attempt += 1
        }
    }

    private func mayRetry(attempt: Int, started: NIODeadline) -> Bool {
        guard attempt < self.configuration.retries.maxRetries else { return false }
        if let limit = self.configuration.retries.tryDuration, NIODeadline.now() - started >= TimeAmount(limit) {
            return false
        }
        return true
    }

    private func pick(
        in set: UpstreamSet, for request: ProxyRequest, key: [UInt8]?, excluding tried: [UpstreamNode], now: NIODeadline
    ) -> (UpstreamNode, Admission)? {
        var excluded = tried
        for _ in 0..<max(set.nodes.count, 1) {
            let node: UpstreamNode?
            if let forced = request.upstream {
                node = set.nodes.first { candidate in
                    candidate.upstream == forced && !excluded.contains { $0 === candidate }
                }
            } else {
                node = set.pick(
                    policy: self.configuration.loadBalancing, key: key, excluded: excluded, counter: self.counter,
                    random: self.random, now: now)
            }
            guard let node else { return nil }
            if let admission = node.admit(now: now) { return (node, admission) }
            excluded.append(node)
        }
        return nil
    }

    private func hashKey(for request: ServerRequest, clientAddress: IPAddress?) -> [UInt8]? {
        guard case .consistentHash(let key, _) = self.configuration.loadBalancing else { return nil }
        switch key {
        case .header(let name):
            return request.headerFields[name].map { Array($0.utf8) }
        case .cookie(let name):
            return request.headerFields.cookies[name].map { Array($0.utf8) }
        case .clientAddress:
            return clientAddress?.bytes
        case .uri:
            return Array((request.head.path ?? "/").utf8)
        }
    }

    /// The `Upgrade` value to forward, when the request asks to upgrade to something allowed.
    private func upgradeToken(of head: HTTPRequest) -> String? {
        guard let upgrade = head.headerFields[.upgrade],
            head.headerFields.containsListElement("upgrade", in: .connection)
        else { return nil }
        let tokens = HeaderRules.listTokens(upgrade).filter {
            self.configuration.allowH2CUpgrade || !$0.equalsIgnoringASCIICase("h2c")
        }
        return tokens.isEmpty ? nil : tokens.joined(separator: ", ")
    }

    static func isIdempotent(_ method: HTTPRequest.Method) -> Bool {
        switch method {
        case .get, .head, .options, .trace, .put, .delete: true
        default: false
        }
    }

    func errorResponse(_ error: ProxyError, request: ServerRequest, context: Context) -> ServerResponse {
        context.logger.warning(
            "proxy request failed",
            metadata: [
                "kind": "\(error.kind.rawValue)", "upstream": "\(error.upstream?.description ?? "-")",
                "detail": "\(error.detail)", "path": "\(request.head.path ?? "")",
            ])
        if let handler = self.hooks.errorHandler { return handler(error, request) }
        return ServerResponse(error: error)
    }

    // MARK: - One attempt

    enum OutboundBody {
        case none
        case replayable(ByteBuffer)
        case stream(RequestBody, length: Int?, expectContinue: Bool)

        var isReplayable: Bool {
            if case .stream = self { return false }
            return true
        }
    }

    enum AttemptResult {
        case response(ServerResponse)
        case retryableStatus(ServerResponse, Int)
        /// `sent`: the upstream may have received (part of) the request.
        case failed(ProxyError, sent: Bool)
    }

    /// What every attempt of one request sends, whichever upstream it goes to.
    struct AttemptPlan {
        var proxyRequest: ProxyRequest
        var body: OutboundBody
        /// The `Upgrade` value forwarded, when the request upgrades.
        var upgrade: String?
        /// The client sent `TE: trailers`: response trailers are forwarded.
        var teTrailers: Bool
        /// A status in `retryOnStatuses` may be retried (idempotent, replayable body).
        var mayRetryStatus: Bool
    }

    /// One attempt on `node`, inside a client span when tracing is on.
    private func attempt(
        _ plan: AttemptPlan, node: UpstreamNode, admission: Admission, context: Context
    ) async -> AttemptResult {
        let proxyRequest = plan.proxyRequest
        node.active.add(1, ordering: .relaxed)
        node.requests.add(1, ordering: .relaxed)
        let started = NIODeadline.now()
        guard let tracer = self.tracer else {
            return await self.attempt(
                plan, node: node, admission: admission, context: context, started: started, span: nil)
        }
        let span = tracer.startSpan(
            proxyRequest.outbound.method.rawValue, context: ServiceContext.current ?? .topLevel, ofKind: .client)
        span.attributes["http.request.method"] = proxyRequest.outbound.method.rawValue
        span.attributes["server.address"] = node.upstream.description
        span.attributes["url.path"] = proxyRequest.outbound.path ?? "/"
        let result = await self.attempt(
            plan, node: node, admission: admission, context: context, started: started, span: span)
        switch result {
        case .response(let response), .retryableStatus(let response, _):
            span.attributes["http.response.status_code"] = Int(response.status.code)
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
        case .failed(let error, _):
            span.attributes["error.type"] = error.kind.rawValue
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
        return result
    }

    private func attempt(
        _ plan: AttemptPlan,
        node: UpstreamNode,
        admission: Admission,
        context: Context,
        started: NIODeadline,
        span: (any Span)?
    ) async -> AttemptResult {
        let body = plan.body
        let eventLoop = MultiThreadedEventLoopGroup.currentEventLoop ?? self.configuration.eventLoopGroup.any()
        let connection: UpstreamConnection
        var reused: Bool
        do {
            (connection, reused) = try await node.pool.acquire(on: eventLoop)
        } catch {
            node.active.subtract(1, ordering: .relaxed)
            let proxyError = ProxyError(error, upstream: node.upstream)
            // A busy pool says nothing of the upstream's health.
            if proxyError.kind != .poolExhausted {
                node.record(.failure(proxyError.kind), admission: admission, now: .now())
            }
            return self.failed(proxyError, sent: false, node: node, lease: nil)
        }
        let lease = Lease(node: node, connection: connection, admission: admission)
        do {
            // A pooled connection the upstream closed meanwhile fails before any answer: the
            // attempt moves to another connection when the request can be sent again, until a
            // new one (not a pooled one) fails too.
            while true {
                do {
                    return try await self.exchange(plan, lease: lease, started: started, context: context, span: span)
                } catch is StaleConnectionError where reused && body.isReplayable {
                    lease.finish(reusable: false)
                    let fresh: UpstreamConnection
                    do {
                        (fresh, reused) = try await node.pool.acquire(on: eventLoop)
                    } catch {
                        throw ExchangeError(underlying: error, sent: false)
                    }
                    lease.replaceConnection(fresh)
                }
            }
        } catch let error as ExchangeError {
            return self.failed(
                ProxyError(error.underlying, upstream: node.upstream), sent: error.sent, node: node, lease: lease)
        } catch let error as StaleConnectionError {
            return self.failed(
                ProxyError(kind: .closed, upstream: node.upstream, detail: "\(error)"), sent: true, node: node,
                lease: lease)
        } catch {
            return self.failed(ProxyError(error, upstream: node.upstream), sent: true, node: node, lease: lease)
        }
    }

    /// Counts a failed attempt, records it for health and gives its connection back closed.
    private func failed(_ error: ProxyError, sent: Bool, node: UpstreamNode, lease: Lease?) -> AttemptResult {
        node.failures.add(1, ordering: .relaxed)
        node.metrics.error(error.kind)
        if let lease {
            lease.record(.failure(error.kind))
            lease.finish(reusable: false)
        }
        return .failed(error, sent: sent)
    }

    /// Sends the request and reads the response head; the body streams later through the lease.
    private func exchange(
        _ plan: AttemptPlan, lease: Lease, started: NIODeadline, context: Context, span: (any Span)?
    ) async throws -> AttemptResult {
        let (proxyRequest, body, upgrade) = (plan.proxyRequest, plan.body, plan.upgrade)
        let (teTrailers, mayRetryStatus) = (plan.teTrailers, plan.mayRetryStatus)
        let connection = lease.connection
        let node = lease.node
        let upstream = node.upstream
        let outbound = proxyRequest.outbound
        let path = outbound.path ?? "/"
        let target = path == "*" && upstream.basePath.isEmpty ? "*" : upstream.basePath + (path == "*" ? "/" : path)
        let authority: String
        switch self.configuration.host {
        case .preserve: authority = outbound.authority ?? upstream.authority
        case .upstream: authority = upstream.authority
        case .fixed(let value): authority = value
        }
        let isHead = outbound.method == .head
        var fields = outbound.headerFields
        fields[HeaderRules.host] = nil
        if let span, let tracer = self.tracer {
            tracer.inject(span.context, into: &fields, using: HTTPFieldsInjector())
        }
        let total = self.configuration.timeouts.total.map { TimeAmount($0) }
        try await connection.beginExchange(isHead: isHead, upgrades: upgrade != nil, total: total)

        var head = ByteBuffer()
        head.reserveCapacity(512)
        var upload: Upload?
        switch body {
        case .none:
            HeaderRules.encodeHead(
                method: outbound.method, target: target, authority: authority, fields: fields, contentLength: nil,
                chunked: false, upgrade: upgrade, into: &head)
            connection.send(head)
            try await connection.requestEnded()
        case .replayable(var buffer):
            HeaderRules.encodeHead(
                method: outbound.method, target: target, authority: authority, fields: fields,
                contentLength: buffer.readableBytes, chunked: false, upgrade: upgrade, into: &head)
            head.writeBuffer(&buffer)
            connection.send(head)
            try await connection.requestEnded()
        case .stream(let requestBody, let length, let expectContinue):
            if expectContinue { fields[.expect] = "100-continue" }
            HeaderRules.encodeHead(
                method: outbound.method, target: target, authority: authority, fields: fields, contentLength: length,
                chunked: length == nil, upgrade: upgrade, into: &head)
            let started = Upload(
                body: requestBody, connection: connection, chunked: length == nil, waitsForContinue: expectContinue,
                continueTimeout: TimeAmount(self.configuration.expectContinueTimeout), logger: context.logger)
            upload = started
            lease.upload = started
            try await connection.write(head)
            started.start()
        }

        // The response head; informational ones first.
        var response: HTTPResponse
        var meta: ResponseMeta
        var sawAnything = false
        while true {
            let part: UpstreamPart?
            do {
                part = try await connection.next()
            } catch {
                // Nothing came back: the upstream closed or reset the connection (a reused one
                // it had timed out, typically). Timeouts and bad bytes are not that.
                let protocolKind = (error as? UpstreamProtocolError)?.kind
                if !sawAnything, !(error is UpstreamTimeoutError), protocolKind == nil || protocolKind == .closedEarly {
                    throw StaleConnectionError()
                }
                throw ExchangeError(underlying: error, sent: true)
            }
            sawAnything = true
            guard let part else { throw StaleConnectionError() }
            guard case .head(let received, let receivedMeta) = part else {
                throw ExchangeError(underlying: UpstreamProtocolError(kind: .unsolicited), sent: true)
            }
            if received.status.code == 100 {
                upload?.proceed()
                continue
            }
            if (102..<200).contains(received.status.code) {
                // 103 Early Hints and the like go to the client at once, cleaned like any
                // head, when the host can send them (RFC 9110 §15.2: a proxy forwards 1xx).
                var interim = received
                receivedMeta.removeNamedInConnection(from: &interim.headerFields)
                let sent = try? await context.informationalResponses?.sendInformational(interim)
                if sent != true {
                    context.logger.debug(
                        "dropped an informational response", metadata: ["status": "\(received.status.code)"])
                }
                continue
            }
            response = received
            meta = receivedMeta
            break
        }
        // A final answer before the upstream asked for the body: the body is never sent.
        upload?.abandonIfWaiting()

        let latency = NIODeadline.now() - started
        node.metrics.answered(status: response.status.code, latency: latency)
        var badAnswer = false
        if let passive = node.passive {
            if passive.unhealthyStatuses.contains(response.status.code) { badAnswer = true }
            if let slow = passive.unhealthyLatency, latency > TimeAmount(slow) { badAnswer = true }
        }
        let outcome: AttemptOutcome = badAnswer ? .badAnswer : .success(latency: latency)
        lease.record(outcome)

        if response.status.code == 101 {
            return .response(
                try self.tunnel(lease: lease, response: response, proxyRequest: proxyRequest, requested: upgrade ?? ""))
        }

        // The parser left out the hop-by-hop fields and a body's `Content-Length`; what
        // `Connection` named goes here. In place: a copy of the fields would copy their storage.
        meta.removeNamedInConnection(from: &response.headerFields)
        if let via = self.configuration.via {
            HeaderRules.append("1.1 \(via)", to: HeaderRules.via, in: &response.headerFields)
        }
        if let modify = self.hooks.modifyResponse { try modify(&response, proxyRequest) }

        if mayRetryStatus, self.configuration.retries.retryOnStatuses.contains(response.status.code) {
            lease.finish(reusable: false)
            return .retryableStatus(
                ServerResponse(
                    head: response,
                    body: ResponseBody(string: "\(response.status.code) \(response.status.reasonPhrase)\n")),
                response.status.code)
        }

        switch meta.framing {
        case .none:
            // The end part is already queued behind the head.
            _ = try? await connection.next()
            lease.finish(reusable: !meta.closeAfter)
            return .response(ServerResponse(head: response, body: .empty))
        case .length(let length) where length <= self.configuration.responseBufferSize:
            var collected = ByteBuffer()
            do {
                loop: while let part = try await connection.next() {
                    switch part {
                    case .body(var chunk): collected.writeBuffer(&chunk)
                    case .end: break loop
                    case .head, .raw: throw UpstreamProtocolError(kind: .unsolicited)
                    }
                }
            } catch {
                throw ExchangeError(underlying: error, sent: true)
            }
            guard collected.readableBytes == length else {
                throw ExchangeError(underlying: UpstreamProtocolError(kind: .closedEarly), sent: true)
            }
            lease.finish(reusable: !meta.closeAfter)
            return .response(ServerResponse(head: response, body: ResponseBody(buffer: collected)))
        default:
            let length: Int?
            if case .length(let value) = meta.framing { length = value } else { length = nil }
            let closeAfter = meta.closeAfter
            let logger = context.logger
            let responseBody = ResponseBody(contentLength: length) { writer in
                do {
                    while let part = try await lease.connection.next() {
                        switch part {
                        case .body(let chunk):
                            try await writer.write(chunk)
                        case .end(let trailers):
                            // The upstream's message is whole: its connection is free whatever
                            // happens to the client's.
                            lease.finish(reusable: !closeAfter)
                            try await writer.finish(trailers: teTrailers ? trailers : nil)
                            return
                        case .head, .raw:
                            throw UpstreamProtocolError(kind: .unsolicited)
                        }
                    }
                    throw UpstreamProtocolError(kind: .closedEarly)
                } catch {
                    let proxyError = ProxyError(error, upstream: upstream)
                    logger.warning(
                        "response body cut", metadata: ["upstream": "\(upstream)", "error": "\(proxyError.detail)"])
                    lease.finish(reusable: false)
                    // Before the first byte went out, the server can still answer its status.
                    throw proxyError
                }
            }
            return .response(ServerResponse(head: response, body: responseBody))
        }
    }

    /// Validates a 101 and turns the exchange into a byte tunnel.
    private func tunnel(
        lease: Lease, response: HTTPResponse, proxyRequest: ProxyRequest, requested: String
    ) throws
        -> ServerResponse
    {
        let chosen = (response.headerFields[.upgrade] ?? "")[...].trimmingOWS()
        let matches =
            !chosen.isEmpty
            && HeaderRules.listTokens(requested).contains { $0.equalsIgnoringASCIICase(chosen) }
        var valid = matches && response.headerFields.containsListElement("upgrade", in: .connection)
        if valid, chosen.equalsIgnoringASCIICase("websocket") {
            let key = proxyRequest.outbound.headerFields[HeaderRules.secWebSocketKey] ?? ""
            let expected = Base64.encode(SHA1.hash(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)))
            valid = response.headerFields[HeaderRules.secWebSocketAccept] == expected
        }
        guard valid else {
            throw ExchangeError(underlying: UpstreamProtocolError(kind: .badUpgrade), sent: true)
        }
        var fields = response.headerFields
        HeaderRules.removeHopByHop(&fields)
        fields[.connection] = "Upgrade"
        fields[.upgrade] = String(chosen)
        var head = response
        head.headerFields = fields
        let timeouts = self.configuration.timeouts
        let upgrade = ConnectionUpgrade { client in
            try await Tunnel(
                lease: lease, idle: TimeAmount(timeouts.tunnelIdle), total: timeouts.tunnelTotal.map { TimeAmount($0) }
            ).run(client)
        }
        return ServerResponse(head: head, body: .empty, upgrade: upgrade)
    }
}

/// A failure during an exchange, and whether the request may have reached the upstream.
struct ExchangeError: Error {
    var underlying: any Error
    var sent: Bool
}

/// A reused connection turned out closed before any answer.
struct StaleConnectionError: Error, CustomStringConvertible {
    var description: String { "the upstream closed the connection before answering" }
}

/// Writes trace context (`traceparent`, `tracestate`, …) into outbound header fields.
struct HTTPFieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into fields: inout HTTPFields) {
        guard let name = HTTPField.Name(key) else { return }
        fields[name] = value
    }
}
