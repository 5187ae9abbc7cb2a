import CoreMetrics
public import HTTPTypes
public import Logging
import NIOCore
public import Strata
import Synchronization

/// An RFC 9111 HTTP cache: the engine behind ``HTTPCacheMiddleware`` and ``HTTPCacheResponder``.
///
/// One `HTTPCache` holds the store, the configuration, the collapsed requests in flight and the
/// background revalidations; create it once and share it. It answers `GET` and `HEAD` from the
/// store when RFC 9111 allows, validates stale responses with the origin, stores what may be
/// stored while it streams to the client, invalidates after unsafe methods, and says what it did
/// in `Cache-Status` (RFC 9211) on every response.
///
/// ```swift
/// let cache = try HTTPCache(store: MemoryCacheStore(maximumBytes: 256 << 20))
/// let app = cache.responder(origin: router)           // background revalidation
/// // or, in a middleware stack:
/// let stack = MiddlewareStack { cache.middleware() ; ... }
/// ```
public final class HTTPCache: Sendable {
    /// The configuration, validated.
    public let configuration: HTTPCacheConfiguration
    /// Where responses are kept.
    public let store: any CacheStore
    let policy: ResponsePolicy
    let clock: any WallClock
    let logger: Logger
    let metrics: CacheMetrics
    let collapser: RequestCollapser
    let statusFields: CacheStatusFields
    private let revalidating = Mutex<Set<String>>([])

    /// Creates a cache.
    ///
    /// - Parameters:
    ///   - store: Where responses are kept (a ``MemoryCacheStore`` by default).
    ///   - configuration: The rules; validated here.
    ///   - clock: The time ages and expiry are computed with.
    ///   - logger: For what happens outside a request (background revalidation).
    /// - Throws: ``HTTPCacheConfigurationError`` listing every problem of `configuration`.
    public init(
        store: some CacheStore = MemoryCacheStore(), configuration: HTTPCacheConfiguration = HTTPCacheConfiguration(),
        clock: some WallClock = SystemWallClock(), logger: Logger = Logger(label: "strata.cache")
    ) throws(HTTPCacheConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.store = store
        self.policy = ResponsePolicy(configuration)
        self.clock = clock
        self.logger = logger
        self.metrics = CacheMetrics(factory: configuration.metricsFactory)
        self.statusFields = CacheStatusFields(name: configuration.name)
        self.collapser = RequestCollapser(
            maximumWaiters: configuration.maximumCollapsedWaiters, timeout: configuration.collapsedWaitTimeout)
    }

    /// This cache as a middleware in a stack.
    ///
    /// A middleware reaches the origin only through the request's own `next`, so it cannot
    /// revalidate after its response has gone: a `stale-while-revalidate` response is
    /// revalidated before answering. Use ``responder(origin:)`` where that matters.
    public func middleware<Context: MiddlewareContext>(context: Context.Type = Context.self) -> HTTPCacheMiddleware<
        Context
    > {
        HTTPCacheMiddleware(cache: self)
    }

    /// This cache in front of `origin`, which it can also call after answering: responses within
    /// `stale-while-revalidate` are served at once and revalidated in the background.
    public func responder<Origin: HTTPResponder>(origin: Origin) -> HTTPCacheResponder<Origin> {
        HTTPCacheResponder(cache: self, origin: origin)
    }

    // MARK: Purging

    /// Removes every stored response for the URL of `request` (its method does not matter).
    public func purge(_ request: HTTPRequest) async throws {
        try await self.store.remove(CacheKey.primary(for: request))
    }

    /// Removes every stored response for `url` (`https://example.com/path?query`).
    ///
    /// - Throws: ``CacheStoreError`` when `url` is not an absolute http(s) URL, or the store's error.
    public func purge(url: String) async throws {
        guard let request = Self.request(forURL: url) else {
            throw CacheStoreError(message: "\(url) is not an absolute http or https URL")
        }
        try await self.purge(request)
    }

    /// Removes every stored response tagged `tag` (by `Cache-Tag` or `Surrogate-Key`); returns
    /// how many URLs were removed.
    @discardableResult
    public func purge(tag: String) async throws -> Int {
        try await self.store.removeTagged(tag)
    }

    /// Removes everything stored.
    public func purgeAll() async throws {
        try await self.store.removeAll()
    }

    static func request(forURL url: String) -> HTTPRequest? {
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("http://") {
            scheme = "http"
        } else if lower.hasPrefix("https://") {
            scheme = "https"
        } else {
            return nil
        }
        let rest = url.dropFirst(scheme.count + 3)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty else { return nil }
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        return HTTPRequest(method: .get, scheme: scheme, authority: authority, path: path)
    }

    // MARK: Answering

    /// Answers `request`, from the store or through `next`; `background`, when there is one,
    /// reaches the origin after the answer has gone.
    func respond<Context: MiddlewareContext>(
        to request: ServerRequest, context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse,
        background: (@Sendable (ServerRequest, Context) async throws -> ServerResponse)?
    ) async throws -> ServerResponse {
        let method = request.head.method
        if let authorize = self.configuration.purgeAuthorization, method.rawValue == "PURGE" {
            return await self.purge(request, context: context, authorize: authorize)
        }
        guard method == .get || method == .head else {
            return try await self.forwardUnsafe(request, context: context, next: next)
        }
        switch await self.decide(request, canRevalidateLater: background != nil, logger: context.logger) {
        case .answer(let answer):
            return answer
        case .fetch(let request, let key, let status, let directives, let collapse):
            return try await self.fetch(
                request, key: key, status: status, requestDirectives: directives, collapse: collapse,
                context: context, next: next)
        case .answerAndRevalidate(let answer, let entry, let key, let request):
            if let background {
                self.revalidateInBackground(entry, key: key, request: request, context: context, origin: background)
            }
            return answer
        case .validate(let entry, let key, let request, let forward, let directives, let staleness, let mayServeStale):
            return try await self.validate(
                entry, key: key, request: request, forward: forward, requestDirectives: directives,
                staleness: staleness, mayServeStale: mayServeStale, context: context, next: next)
        }
    }

    /// What to do with a `GET` or `HEAD`, decided without the origin.
    enum Decision {
        /// Answered from the store (or `504` for `only-if-cached`).
        case answer(ServerResponse)
        /// Nothing usable stored: ask the origin.
        case fetch(ServerRequest, key: String, status: CacheStatus, directives: CacheDirectives, collapse: Bool)
        /// Answered stale within `stale-while-revalidate`; revalidate after answering.
        case answerAndRevalidate(ServerResponse, entry: CachedResponse, key: String, request: ServerRequest)
        /// A stored response that must be validated first.
        case validate(
            CachedResponse, key: String, request: ServerRequest, forward: CacheStatus.Forward,
            directives: CacheDirectives, staleness: Int, mayServeStale: Bool)
    }

    /// The lookup and every decision that needs no origin: not generic over the context, so a
    /// hit runs specialised code only.
    func decide(_ request: ServerRequest, canRevalidateLater: Bool, logger: Logger) async -> Decision {
        var request = request
        let directives = self.requestRules(&request.head)
        let key = CacheKey.primary(for: request.head)
        var variants: [CachedResponse] = []
        var storeWorks = true
        do {
            variants = try await self.store.variants(for: key)
        } catch {
            self.metrics.lookupErrors.increment()
            logger.warning(
                "cache store lookup failed; asking the origin", metadata: ["key": "\(key)", "error": "\(error)"])
            storeWorks = false
        }
        guard var entry = self.select(variants, for: request.head.headerFields) else {
            if directives.onlyIfCached { return .answer(self.onlyIfCachedMiss()) }
            let forward: CacheStatus.Forward = variants.isEmpty ? .uriMiss : .varyMiss
            return .fetch(request, key: key, status: .forwarded(forward), directives: directives, collapse: storeWorks)
        }

        let (freshness, age, ttl) = self.state(of: entry)
        // A store outside the process returns entries without what their fields say: keep it
        // derived once for the rest of the request (the answer, a validation, stale rules).
        if entry.freshness == nil { entry.freshness = freshness }
        let stored = freshness.directives
        let acceptable =
            directives.maxAge.map { age <= $0 } ?? true && directives.minFresh.map { ttl >= $0 } ?? true
        if ttl > 0, !stored.noCache, !directives.noCache, acceptable {
            let answer: ServerResponse?
            if let body = entry.body {
                answer = self.answer(from: entry, body: body, request: request, status: .hit(ttl: ttl), age: age)
            } else {
                answer = await self.answer(from: entry, key: key, request: request, status: .hit(ttl: ttl), age: age)
            }
            if let answer {
                self.metrics.hits.increment()
                return .answer(answer)
            }
        }

        let mayServeStale = self.mayServeStale(stored)
        let staleness = -ttl
        if ttl <= 0, mayServeStale, !stored.noCache, !directives.noCache {
            let ceiling = Int(self.configuration.maximumStale.components.seconds)
            if let maxStale = directives.maxStale, staleness <= min(maxStale, ceiling),
                directives.maxAge.map({ age <= $0 }) ?? true,
                let answer = await self.answer(
                    from: entry, key: key, request: request, status: .hit(ttl: ttl), age: age)
            {
                self.metrics.staleServed.increment()
                return .answer(answer)
            }
            if let window = stored.staleWhileRevalidate, staleness <= min(window, ceiling), canRevalidateLater,
                directives.maxAge == nil, directives.minFresh == nil
            {
                var status = CacheStatus.hit(ttl: ttl)
                status.detail = "stale-while-revalidate"
                if let answer = await self.answer(from: entry, key: key, request: request, status: status, age: age) {
                    self.metrics.staleServed.increment()
                    return .answerAndRevalidate(answer, entry: entry, key: key, request: request)
                }
            }
        }
        if directives.onlyIfCached { return .answer(self.onlyIfCachedMiss()) }
        let forward: CacheStatus.Forward = ttl > 0 && !stored.noCache ? .request : .stale
        return .validate(
            entry, key: key, request: request, forward: forward, directives: directives, staleness: staleness,
            mayServeStale: mayServeStale)
    }

    /// Whether the stored response's directives let it be served stale at all (RFC 9111 §4.2.4).
    private func mayServeStale(_ directives: CacheDirectives) -> Bool {
        if directives.mustRevalidate { return false }
        if self.policy.shared, directives.proxyRevalidate || directives.sharedMaxAge != nil { return false }
        return true
    }

    /// The most recent stored variant whose secondary key the request matches (RFC 9111 §4.1).
    func select(_ variants: [CachedResponse], for fields: HTTPFields) -> CachedResponse? {
        // The common case, one response without Vary, computes nothing.
        if variants.count == 1, variants[0].variantKey.isEmpty, variants[0].freshness?.varyNames.isEmpty == true {
            return variants[0]
        }
        var best: CachedResponse?
        var keys: [[String]: String?] = [:]
        for variant in variants {
            let names = variant.freshness?.varyNames ?? CacheKey.varyNames(variant.headerFields)
            let key: String?
            if let computed = keys[names] {
                key = computed
            } else {
                key = CacheKey.secondary(varyNames: names, request: fields)
                keys[names] = key
            }
            guard let key, key == variant.variantKey else { continue }
            if let current = best, current.responseTime >= variant.responseTime { continue }
            best = variant
        }
        return best
    }

    /// What `entry`'s fields say (derived when it was stored, or now), its current age and the
    /// freshness it has left, in seconds.
    func state(of entry: CachedResponse) -> (freshness: Freshness, age: Int, ttl: Int) {
        let freshness = entry.freshness ?? self.policy.freshness(of: entry)
        let age = ResponsePolicy.currentAge(entry, dateValue: freshness.dateValue, now: self.clock.now())
        return (freshness, age, freshness.lifetime - age)
    }

    /// `entry` made ready for a store: what its fields say derived, and how long it is kept.
    ///
    /// - Parameter directives: The entry's directives, when the caller parsed them already.
    func prepared(_ entry: CachedResponse, directives: CacheDirectives? = nil) -> CachedResponse {
        var entry = entry
        let freshness = self.policy.freshness(of: entry, directives: directives)
        entry.freshness = freshness
        entry.storedUntil = self.storedUntil(entry, freshness: freshness)
        return entry
    }

    /// The stored response as an answer to `request`: `304` for a matching conditional request,
    /// else the stored status, fields and body, with `Age` and `Cache-Status`. `nil` when the
    /// store no longer has the body.
    func answer(from entry: CachedResponse, key: String, request: ServerRequest, status: CacheStatus, age: Int) async
        -> ServerResponse?
    {
        if let body = entry.body {
            return self.answer(from: entry, body: body, request: request, status: status, age: age)
        }
        do {
            guard let body = try await self.store.body(of: entry, for: key) else { return nil }
            return self.answer(from: entry, body: body, request: request, status: status, age: age)
        } catch {
            self.metrics.lookupErrors.increment()
            self.logger.warning("cache store failed to read a body", metadata: ["key": "\(key)", "error": "\(error)"])
            return nil
        }
    }

    /// The answer from `entry` with its body at hand: no suspension on a memory store's hit.
    private func answer(
        from entry: CachedResponse, body: ByteBuffer, request: ServerRequest, status: CacheStatus, age: Int
    )
        -> ServerResponse
    {
        let freshness = entry.freshness ?? self.policy.freshness(of: entry)
        let fields: HTTPFields
        if status.isPlainHit, let ttl = status.ttl {
            fields = freshness.hitFields(age: age, ttl: ttl, cacheName: self.configuration.name)
        } else {
            var built = freshness.answerFields
            // Stored fields never hold Age or this cache's Cache-Status: append, without a lookup.
            built.append(HTTPField(name: .age, value: String(age)))
            built.append(self.statusFields.field(status))
            fields = built
        }
        if (200..<300).contains(entry.status.code), Conditionals.notModified(request.head.headerFields, stored: fields)
        {
            return ServerResponse(status: .notModified, headerFields: Conditionals.notModifiedFields(fields))
        }
        return ServerResponse(status: entry.status, headerFields: fields, body: ResponseBody(buffer: body))
    }

    private func onlyIfCachedMiss() -> ServerResponse {
        var status = CacheStatus()
        status.detail = "only-if-cached"
        var fields = HTTPFields()
        fields[.cacheStatus] = status.render(name: self.configuration.name)
        fields[.cacheControl] = "no-store"
        return ServerResponse(
            status: .gatewayTimeout, headerFields: fields, body: ResponseBody(string: "504 Gateway Timeout\n"))
    }

    // MARK: Going to the origin

    /// A miss: fetch from the origin, collapsed with concurrent misses for the same URL.
    private func fetch<Context: MiddlewareContext>(
        _ request: ServerRequest, key: String, status: CacheStatus, requestDirectives: CacheDirectives, collapse: Bool,
        context: Context, next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var flight: RequestCollapser.Flight?
        if collapse, self.configuration.collapsesRequests, request.head.method == .get,
            !Conditionals.isConditional(request.head.headerFields), !requestDirectives.noStore
        {
            switch await self.collapser.join(key) {
            case .leader(let leader):
                flight = leader
            case .waited(let outcome):
                self.metrics.collapsed.increment()
                if case .stored = outcome, let answer = await self.answerCollapsed(request, key: key, status: status) {
                    return answer
                }
            case .alone:
                break
            }
        }
        let requestTime = self.clock.now()
        let response: ServerResponse
        do {
            response = try await next(request, context)
        } catch {
            flight?.finish(.notStored)
            throw error
        }
        self.metrics.misses.increment()
        return await self.admit(
            response, to: request, key: key, requestTime: requestTime, requestDirectives: requestDirectives,
            status: status, flight: flight, logger: context.logger)
    }

    /// A collapsed request's answer from what its leader stored, if it matches and is fresh.
    private func answerCollapsed(_ request: ServerRequest, key: String, status: CacheStatus) async -> ServerResponse? {
        guard let variants = try? await self.store.variants(for: key),
            var entry = self.select(variants, for: request.head.headerFields)
        else { return nil }
        let (freshness, age, ttl) = self.state(of: entry)
        if entry.freshness == nil { entry.freshness = freshness }
        guard !freshness.directives.noCache, ttl > 0 else { return nil }
        var status = status
        status.collapsed = true
        status.ttl = ttl
        return await self.answer(from: entry, key: key, request: request, status: status, age: age)
    }

    /// A stale (or `no-cache`) entry: ask the origin whether it changed (RFC 9111 §4.3.1).
    private func validate<Context: MiddlewareContext>(
        _ entry: CachedResponse, key: String, request: ServerRequest, forward: CacheStatus.Forward,
        requestDirectives: CacheDirectives, staleness: Int, mayServeStale: Bool, context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        // Without a validator, the whole response is fetched again; stale-if-error still applies.
        let conditional =
            Conditionals.validationRequest(for: request, stored: entry.headerFields)
            ?? ServerRequest(head: Conditionals.withoutConditionals(request.head), body: request.body)
        let errorWindow = self.staleIfErrorWindow(entry)
        let staleOnError = mayServeStale && staleness <= errorWindow
        let requestTime = self.clock.now()
        let response: ServerResponse
        do {
            response = try await next(conditional, context)
        } catch {
            self.metrics.revalidationFailed.increment()
            if staleOnError, let answer = await self.staleAnswer(entry, key: key, request: request, forwardStatus: nil)
            {
                context.logger.warning(
                    "origin failed; serving the stale response (stale-if-error)",
                    metadata: ["key": "\(key)", "error": "\(error)"])
                return answer
            }
            throw error
        }
        if response.status.code == 304 {
            if let freshened = self.freshen(entry, with: response.head.headerFields, requestTime: requestTime) {
                self.metrics.notModified.increment()
                await self.writeMetadata(freshened, key: key, logger: context.logger)
                var status = CacheStatus.forwarded(forward)
                status.forwardStatus = 304
                let (_, age, ttl) = self.state(of: freshened)
                status.ttl = ttl
                if let answer = await self.answer(from: freshened, key: key, request: request, status: status, age: age)
                {
                    return answer
                }
            }
            // The 304 names another representation, or the body is gone: fetch it whole.
            return try await self.fetch(
                request, key: key, status: .forwarded(forward), requestDirectives: requestDirectives, collapse: false,
                context: context, next: next)
        }
        if [500, 502, 503, 504].contains(response.status.code), staleOnError,
            let answer = await self.staleAnswer(
                entry, key: key, request: request, forwardStatus: response.status.code)
        {
            self.metrics.revalidationFailed.increment()
            context.logger.warning(
                "origin answered \(response.status.code); serving the stale response (stale-if-error)",
                metadata: ["key": "\(key)"])
            await Self.discard(response.body)
            return answer
        }
        self.metrics.replaced.increment()
        return await self.admit(
            response, to: request, key: key, requestTime: requestTime, requestDirectives: requestDirectives,
            status: .forwarded(forward), flight: nil, logger: context.logger)
    }

    /// How stale an entry may be served when the origin fails: its `stale-if-error`, else the
    /// configured default, within the ceiling.
    private func staleIfErrorWindow(_ entry: CachedResponse) -> Int {
        let directives = self.state(of: entry).freshness.directives
        let configured = Int(self.configuration.staleIfError.components.seconds)
        let ceiling = Int(self.configuration.maximumStale.components.seconds)
        return min(max(directives.staleIfError ?? 0, configured), ceiling)
    }

    private func staleAnswer(_ entry: CachedResponse, key: String, request: ServerRequest, forwardStatus: Int?) async
        -> ServerResponse?
    {
        let (_, age, ttl) = self.state(of: entry)
        var status = CacheStatus.forwarded(.stale)
        status.forwardStatus = forwardStatus
        status.ttl = ttl
        status.detail = "stale-if-error"
        guard let answer = await self.answer(from: entry, key: key, request: request, status: status, age: age) else {
            return nil
        }
        self.metrics.staleServed.increment()
        return answer
    }

    /// `entry` updated by a `304` (RFC 9111 §3.2, §4.3.4); `nil` when the `304` carries a strong
    /// validator that is not the stored one.
    private func freshen(_ entry: CachedResponse, with fields: HTTPFields, requestTime: Timestamp) -> CachedResponse? {
        if let incoming = fields.combinedValue(.eTag), let stored = entry.headerFields.combinedValue(.eTag),
            !Conditionals.weakMatch(incoming, stored)
        {
            return nil
        }
        var freshened = entry
        freshened.headerFields = self.policy.freshened(entry.headerFields, with: fields)
        freshened.requestTime = requestTime
        freshened.responseTime = self.clock.now()
        freshened.ageValue = ResponsePolicy.ageValue(fields)
        return self.prepared(freshened)
    }

    /// The background revalidation of a response served within `stale-while-revalidate`: at
    /// most one per stored variant at a time.
    private func revalidateInBackground<Context: MiddlewareContext>(
        _ entry: CachedResponse, key: String, request: ServerRequest, context: Context,
        origin: @escaping @Sendable (ServerRequest, Context) async throws -> ServerResponse
    ) {
        let token = key + "\n" + entry.variantKey
        guard self.revalidating.withLock({ $0.insert(token).inserted }) else { return }
        let validation =
            Conditionals.validationRequest(for: request, stored: entry.headerFields)
            ?? ServerRequest(head: Conditionals.withoutConditionals(request.head))
        Task {
            defer { _ = self.revalidating.withLock { $0.remove(token) } }
            let requestTime = self.clock.now()
            do {
                let response = try await origin(validation, context)
                if response.status.code == 304,
                    let freshened = self.freshen(entry, with: response.head.headerFields, requestTime: requestTime)
                {
                    self.metrics.notModified.increment()
                    await self.writeMetadata(freshened, key: key, logger: self.logger)
                    return
                }
                let answered = await self.admit(
                    response, to: validation, key: key, requestTime: requestTime,
                    requestDirectives: CacheDirectives(), status: .forwarded(.stale), flight: nil, logger: self.logger)
                self.metrics.replaced.increment()
                await Self.discard(answered.body)
            } catch {
                self.metrics.revalidationFailed.increment()
                self.logger.warning(
                    "background revalidation failed; the stale response stays",
                    metadata: ["key": "\(key)", "error": "\(error)"])
            }
        }
    }

    // MARK: Storing

    /// Decides whether the origin's `response` is stored, stores it (now, or as its body streams
    /// to the client), and returns what the client gets.
    func admit(
        _ response: ServerResponse, to request: ServerRequest, key: String, requestTime: Timestamp,
        requestDirectives: CacheDirectives, status: CacheStatus, flight: RequestCollapser.Flight?, logger: Logger
    ) async -> ServerResponse {
        var response = response
        guard
            var entry = self.applyRules(
                to: &response, request: request.head, requestDirectives: requestDirectives, requestTime: requestTime,
                status: status)
        else {
            flight?.finish(.notStored)
            return response
        }
        if let buffer = response.body.buffer {
            entry.body = Self.compacted(buffer)
            entry.bodyLength = buffer.readableBytes
            let stored = await self.write(entry, key: key, logger: logger)
            flight?.finish(stored ? .stored : .notStored)
        } else {
            response.body = self.teeing(response.body, into: entry, key: key, flight: flight, logger: logger)
        }
        return response
    }

    /// A miss's rules on the origin's `response`: the entry to store (without its body) or
    /// `nil`, and `response` made what the client gets, this cache's own fields removed and
    /// `Cache-Status` (`status`, with the origin's status and whether it is stored) added.
    func applyRules(
        to response: inout ServerResponse, request: HTTPRequest, requestDirectives: CacheDirectives,
        requestTime: Timestamp, status: CacheStatus
    ) -> CachedResponse? {
        var status = status
        status.forwardStatus = response.status.code
        let entry = self.admission(
            of: response, to: request, requestDirectives: requestDirectives, requestTime: requestTime,
            responseTime: self.clock.now())
        self.policy.removeOwnFields(&response.head.headerFields)
        status.stored = entry != nil
        response.head.headerFields.append(self.statusFields.field(status))
        return entry
    }

    /// The entry to store for the origin's `response` to `request`, its freshness derived, or
    /// `nil` when RFC 9111 §3 (or the size cap, or a lifetime too short to keep) says not to
    /// store it. Only decides: the body is not read, nothing is written.
    func admission(
        of response: ServerResponse, to request: HTTPRequest, requestDirectives: CacheDirectives,
        requestTime: Timestamp, responseTime: Timestamp
    ) -> CachedResponse? {
        let origin = response.head.headerFields
        let directives = self.policy.directives(origin)
        guard
            self.policy.refusal(
                request: request, requestDirectives: requestDirectives, response: response.head,
                directives: directives) == nil,
            !response.body.isOpaque, (response.body.contentLength ?? 0) <= self.configuration.maximumEntrySize,
            let variantKey = CacheKey.secondary(varyNames: CacheKey.varyNames(origin), request: request.headerFields)
        else { return nil }
        let candidate = self.prepared(
            CachedResponse(
                status: response.status, headerFields: self.policy.storedFields(origin, directives: directives),
                body: nil, bodyLength: 0, variantKey: variantKey, requestTime: requestTime,
                responseTime: responseTime, ageValue: ResponsePolicy.ageValue(origin),
                tags: ResponsePolicy.tags(origin), storedUntil: responseTime),
            // The stored fields keep every field the directives come from, unless
            // `Connection` named one of them.
            directives: origin.has(.connection) ? nil : directives)
        return candidate.storedUntil > responseTime ? candidate : nil
    }

    /// When a store may forget `entry`: when it stops being fresh, plus the stale ceiling if
    /// it can still be validated or served stale.
    private func storedUntil(_ entry: CachedResponse, freshness: Freshness) -> Timestamp {
        let directives = freshness.directives
        let initialAge = ResponsePolicy.currentAge(entry, dateValue: freshness.dateValue, now: entry.responseTime)
        let freshFor = max(0, freshness.lifetime - initialAge)
        let validatable = entry.headerFields.has(.eTag) || entry.headerFields.has(.lastModified)
        let servableStale =
            self.mayServeStale(directives)
            && ((directives.staleWhileRevalidate ?? 0) > 0 || (directives.staleIfError ?? 0) > 0
                || self.configuration.staleIfError > .zero)
        // Neither fresh, nor validatable, nor ever served stale: not worth keeping.
        if freshFor == 0, !validatable, !servableStale { return entry.responseTime }
        let keptStale = validatable || self.mayServeStale(directives) ? self.configuration.maximumStale : .zero
        return entry.responseTime + .seconds(freshFor) + keptStale
    }

    /// Stores `entry`; `false` (logged and counted) when the store failed.
    private func write(_ entry: CachedResponse, key: String, logger: Logger) async -> Bool {
        do {
            try await self.store.store(entry, for: key)
            return true
        } catch {
            self.metrics.writeErrors.increment()
            logger.warning(
                "cache store write failed; the response was not stored",
                metadata: ["key": "\(key)", "error": "\(error)"])
            return false
        }
    }

    private func writeMetadata(_ entry: CachedResponse, key: String, logger: Logger) async {
        do {
            try await self.store.updateMetadata(entry, for: key)
        } catch {
            self.metrics.writeErrors.increment()
            logger.warning("cache store update failed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// `body` streamed to the client and, if it completes within the size cap, stored.
    private func teeing(
        _ body: ResponseBody, into entry: CachedResponse, key: String, flight: RequestCollapser.Flight?, logger: Logger
    ) -> ResponseBody {
        let limit = self.configuration.maximumEntrySize
        let expectedLength = body.contentLength
        return ResponseBody(contentLength: body.contentLength) { parent in
            var writer: any ResponseBodyWriter = CacheTeeWriter(
                parent: parent, entry: entry, limit: limit, expectedLength: expectedLength)
            do {
                try await body.write(to: &writer)
            } catch {
                flight?.finish(.notStored)
                if (writer as? CacheTeeWriter)?.clientError == nil {
                    logger.info("origin body failed; nothing stored", metadata: ["key": "\(key)", "error": "\(error)"])
                }
                throw error
            }
            // A body that swapped the writer for another one cannot be stored.
            guard var tee = writer as? CacheTeeWriter else {
                flight?.finish(.notStored)
                return
            }
            try await tee.finish(trailers: nil)
            var stored = false
            if let complete = tee.completedEntry, expectedLength == nil || expectedLength == complete.bodyLength {
                // The entry was prepared from its fields before the body streamed; only a
                // transform inside that changed them since makes it derive its freshness again.
                let ready = tee.fieldsChanged ? self.prepared(complete) : complete
                stored = await self.write(ready, key: key, logger: logger)
            }
            flight?.finish(stored ? .stored : .notStored)
            if let clientError = tee.clientError { throw clientError }
        }
    }

    /// `buffer`, or a copy of its bytes alone when it is a small view of a larger storage (a
    /// slice of a connection's read buffer): a stored entry must not pin kilobytes for a few
    /// bytes, nor hold more memory than its store counts.
    static func compacted(_ buffer: ByteBuffer) -> ByteBuffer {
        guard buffer.storageCapacity > buffer.readableBytes + 1024 else { return buffer }
        var copy = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
        copy.writeImmutableBuffer(buffer)
        return copy
    }

    /// Drains a body nobody will read, so the origin's connection is released.
    static func discard(_ body: ResponseBody) async {
        guard body.buffer == nil, !body.isOpaque else { return }
        var sink: any ResponseBodyWriter = DiscardingWriter()
        try? await body.write(to: &sink)
    }

    // MARK: Unsafe methods and purges

    /// Forwards a request the cache does not answer; after an unsafe method succeeds, forgets
    /// its URL and the same-origin `Location` and `Content-Location` (RFC 9111 §4.4).
    private func forwardUnsafe<Context: MiddlewareContext>(
        _ request: ServerRequest, context: Context, next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var response = try await next(request, context)
        let method = request.head.method
        let safe = method == .options || method == .trace || method == .connect
        if !safe, (200..<400).contains(response.status.code) {
            var keys = [CacheKey.primary(for: request.head)]
            for name in [HTTPField.Name.location, .contentLocation] {
                if let value = response.head.headerFields.combinedValue(name),
                    let target = Self.sameOriginTarget(value, of: request.head)
                {
                    var head = request.head
                    head.path = target
                    keys.append(CacheKey.primary(for: head))
                }
            }
            for key in keys {
                do {
                    try await self.store.remove(key)
                } catch {
                    self.metrics.writeErrors.increment()
                    context.logger.warning(
                        "cache store failed to invalidate after \(method.rawValue)",
                        metadata: ["key": "\(key)", "error": "\(error)"])
                }
            }
        }
        self.policy.removeOwnFields(&response.head.headerFields)
        response.head.headerFields.append(self.statusFields.field(.forwarded(.method)))
        return response
    }

    /// The path of `reference` when it names the same origin as `request`.
    static func sameOriginTarget(_ reference: String, of request: HTTPRequest) -> String? {
        if reference.hasPrefix("/") { return reference.hasPrefix("//") ? nil : reference }
        guard let absolute = Self.request(forURL: reference), let authority = request.authority,
            absolute.authority?.equalsIgnoringASCIICase(authority) == true,
            absolute.scheme == (request.scheme ?? "http")
        else { return nil }
        return absolute.path
    }

    private func purge<Context: MiddlewareContext>(
        _ request: ServerRequest, context: Context, authorize: @Sendable (HTTPRequest, SocketAddress?) -> Bool
    ) async -> ServerResponse {
        guard authorize(request.head, context.remoteAddress) else {
            context.logger.notice("PURGE refused", metadata: ["path": "\(request.head.path ?? "")"])
            return ServerResponse(status: .forbidden, body: ResponseBody(string: "purge not allowed\n"))
        }
        let tags = ResponsePolicy.tags(request.head.headerFields)
        do {
            if tags.isEmpty {
                try await self.purge(request.head)
                return ServerResponse(status: .ok, body: ResponseBody(string: "purged\n"))
            }
            var removed = 0
            for tag in tags { removed += try await self.store.removeTagged(tag) }
            return ServerResponse(status: .ok, body: ResponseBody(string: "purged \(removed)\n"))
        } catch {
            self.metrics.writeErrors.increment()
            context.logger.error("PURGE failed: the cache store failed", metadata: ["error": "\(error)"])
            return ServerResponse(status: .serviceUnavailable, body: ResponseBody(string: "cache store unavailable\n"))
        }
    }
}

/// A writer that drops what it is given.
struct DiscardingWriter: ResponseBodyWriter {
    mutating func write(_ buffer: ByteBuffer) async throws {}
    mutating func finish(trailers: HTTPFields?) async throws {}
}

extension HTTPCache {
    /// The lookup and the freshness decision of a hit, alone, for the benchmarks: the stored
    /// response for `request` and the seconds of freshness it has left; `nil` when none is fresh.
    @_spi(Benchmarks)
    public func freshLookup(_ request: HTTPRequest) async throws -> (entry: CachedResponse, ttl: Int)? {
        let key = CacheKey.primary(for: request)
        guard let entry = self.select(try await self.store.variants(for: key), for: request.headerFields) else {
            return nil
        }
        let ttl = self.state(of: entry).ttl
        return ttl > 0 ? (entry, ttl) : nil
    }

    /// The request's directives, with its `Accept-Encoding` normalised in `request`: how every
    /// lookup starts. Public for the benchmarks' floor of a miss (the rules without the cache).
    @_spi(Benchmarks)
    public func requestRules(_ request: inout HTTPRequest) -> CacheDirectives {
        let directives = requestDirectives(request.headerFields)
        if !directives.noTransform { self.configuration.acceptEncoding.apply(to: &request.headerFields) }
        return directives
    }

    /// A miss's rules on the origin's response alone (what every miss runs in
    /// ``admit(_:to:key:requestTime:requestDirectives:status:flight:logger:)``), for the
    /// benchmarks' floor of a miss: the entry to store (RFC 9111 §3, its freshness derived) or
    /// `nil`, and `response` as the client gets it (this cache's own fields removed,
    /// `Cache-Status` added). What the cache does on a miss besides these, the lookup, the proxy
    /// and the store write, is collapsing and its own bookkeeping.
    @_spi(Benchmarks)
    public func responseRules(
        _ response: inout ServerResponse, to request: HTTPRequest, requestDirectives: CacheDirectives,
        requestTime: Timestamp
    ) -> CachedResponse? {
        self.applyRules(
            to: &response, request: request, requestDirectives: requestDirectives, requestTime: requestTime,
            status: .forwarded(.uriMiss))
    }
}
