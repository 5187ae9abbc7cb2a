import HTTPTypes
import Strata
import Synchronization

/// The RFC 9111 rules that turn a response into a stored entry and a stored entry into an
/// answer: what may be stored (§3), how long it is fresh (§4.2.1, §4.2.2), its age (§4.2.3),
/// and which fields are kept (§3.1, §5.2.2.4, §5.2.2.7).
struct ResponsePolicy: Sendable {
    let shared: Bool
    let targetedFields: [HTTPField.Name]
    let heuristicFraction: Double
    let maximumHeuristicSeconds: Int
    let perUserVaryFields: Set<String>
    let exposesTagFields: Bool

    init(_ configuration: HTTPCacheConfiguration) {
        self.shared = configuration.mode == .shared
        self.targetedFields = configuration.targetedFields
        self.heuristicFraction = configuration.heuristicFraction
        self.maximumHeuristicSeconds = Int(configuration.maximumHeuristicLifetime.components.seconds)
        self.perUserVaryFields = Set(configuration.perUserVaryFields.map { $0.lowercased() })
        self.exposesTagFields = configuration.exposesTagFields
    }

    /// Statuses a cache may store with heuristic freshness (RFC 9110 §15.1).
    static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// Statuses this cache understands, for `must-understand` (partial content is not handled).
    static let understood: Set<Int> = [
        200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 500, 501, 502, 503, 504,
    ]

    /// The directives that govern this cache: the first valid targeted field (RFC 9213 §2.1),
    /// else `Cache-Control`.
    func directives(_ fields: HTTPFields) -> CacheDirectives {
        for name in self.targetedFields {
            if let directives = CacheDirectives.targetedField(fields, name: name) { return directives }
        }
        return CacheDirectives(fields)
    }

    /// Why a response is not stored, for logs and `Cache-Status`' `detail`.
    enum Refusal: String, Sendable {
        case method, status, noStore = "no-store", mustUnderstand = "must-understand", isPrivate = "private"
        case authorization, setCookie = "set-cookie", varyStar = "vary-star", perUser = "vary-per-user"
        case noFreshness = "no-freshness", requestNoStore = "request-no-store", partial
    }

    /// Whether `response` to `request` may be stored (RFC 9111 §3).
    func refusal(
        request: HTTPRequest, requestDirectives: CacheDirectives, response: HTTPResponse, directives: CacheDirectives
    ) -> Refusal? {
        guard request.method == .get else { return .method }
        if requestDirectives.noStore { return .requestNoStore }
        let code = response.status.code
        if code < 200 || code == 206 || code == 304 || response.headerFields.has(.contentRange) { return .partial }
        if directives.mustUnderstand {
            if !Self.understood.contains(code) { return .mustUnderstand }
        } else if directives.noStore {
            return .noStore
        }
        if self.shared {
            if directives.isPrivate { return .isPrivate }
            if request.headerFields.has(.authorization),
                !(directives.isPublic || directives.sharedMaxAge != nil || directives.mustRevalidate)
            {
                return .authorization
            }
            if response.headerFields.has(.setCookie) { return .setCookie }
        }
        let vary = CacheKey.varyNames(response.headerFields)
        if vary.contains("*") { return .varyStar }
        if self.shared, vary.contains(where: { self.perUserVaryFields.contains($0) }) { return .perUser }
        let explicit =
            directives.maxAge != nil || (self.shared && directives.sharedMaxAge != nil)
            || response.headerFields.has(.expires) || directives.isPublic || (!self.shared && directives.isPrivate)
        guard explicit || Self.heuristicallyCacheable.contains(code) else { return .status }
        return nil
    }

    /// The freshness lifetime in seconds (RFC 9111 §4.2.1), heuristic when nothing explicit.
    func freshnessLifetime(_ fields: HTTPFields, directives: CacheDirectives, status: Int, responseTime: Timestamp)
        -> Int
    {
        if self.shared, let sharedMaxAge = directives.sharedMaxAge { return sharedMaxAge }
        if let maxAge = directives.maxAge { return maxAge }
        let date = Self.dateValue(fields, responseTime: responseTime)
        if let expires = fields.combinedValue(.expires) {
            guard fields.lineCount(.expires) == 1, let expiry = HTTPDate.parse(expires) else { return 0 }
            return max(0, Int(clamping: expiry - date))
        }
        guard Self.heuristicallyCacheable.contains(status) || directives.isPublic,
            let lastModified = fields.combinedValue(.lastModified).flatMap({ HTTPDate.parse($0) }), lastModified < date
        else { return 0 }
        let heuristic = Double(date - lastModified) * self.heuristicFraction
        return min(Int(heuristic), self.maximumHeuristicSeconds)
    }

    /// The origin's `Date` in seconds, or the response time when it has none (or a bad one).
    static func dateValue(_ fields: HTTPFields, responseTime: Timestamp) -> Int64 {
        // One pass, no joined string: two Date lines join into no valid date, as one invalid line is.
        var date: String?
        var lines = 0
        for field in fields where field.name.isSame(as: .date) {
            lines += 1
            date = field.value
        }
        guard lines == 1, let date, let parsed = HTTPDate.parse(date) else { return responseTime.secondsSince1970 }
        return parsed
    }

    /// The origin's `Age`, in seconds; 0 when absent or invalid.
    static func ageValue(_ fields: HTTPFields) -> Int {
        guard let value = fields.combinedValue(.age) else { return 0 }
        let text = value.split(separator: ",").first.map { $0.trimmingOWS() } ?? ""
        return CacheDirectives.seconds(text)
    }

    /// What the cache needs of a stored response on every use, derived once from its fields.
    /// - Parameter directives: The entry's directives when the caller has parsed them already.
    func freshness(of entry: CachedResponse, directives known: CacheDirectives? = nil) -> Freshness {
        let directives = known ?? self.directives(entry.headerFields)
        var answerFields = entry.headerFields
        self.removeOwnFields(&answerFields)
        return Freshness(
            directives: directives,
            lifetime: self.freshnessLifetime(
                entry.headerFields, directives: directives, status: entry.status.code,
                responseTime: entry.responseTime),
            dateValue: Self.dateValue(entry.headerFields, responseTime: entry.responseTime),
            varyNames: CacheKey.varyNames(entry.headerFields),
            answerFields: answerFields)
    }

    /// The current age of `entry` at `now`, in seconds (RFC 9111 §4.2.3).
    static func currentAge(_ entry: CachedResponse, now: Timestamp) -> Int {
        Self.currentAge(
            entry, dateValue: Self.dateValue(entry.headerFields, responseTime: entry.responseTime), now: now)
    }

    /// The current age of `entry`, whose `Date` is `date` (in seconds), at `now`.
    static func currentAge(_ entry: CachedResponse, dateValue date: Int64, now: Timestamp) -> Int {
        let responseSeconds = entry.responseTime.secondsSince1970
        let apparentAge = max(0, responseSeconds - date)
        let responseDelay = max(0, entry.responseTime.secondsSince1970 - entry.requestTime.secondsSince1970)
        let correctedAgeValue = Int64(entry.ageValue) + responseDelay
        let correctedInitialAge = max(apparentAge, correctedAgeValue)
        let residentTime = max(0, (now - entry.responseTime).components.seconds)
        return Int(clamping: correctedInitialAge + residentTime)
    }

    /// Hop-by-hop fields (RFC 9110 §7.6.1) and framing, never stored.
    private static let unstored: [HTTPField.Name] = [
        .connection, .transferEncoding, .upgrade, .te, .trailer, .proxyAuthenticate, .proxyAuthorization, .age,
        .contentLength, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!,
    ]

    /// The fields of `fields` a stored copy keeps.
    func storedFields(_ fields: HTTPFields, directives: CacheDirectives) -> HTTPFields {
        var stored = fields
        func remove(_ name: HTTPField.Name) {
            if stored.has(name) { stored[name] = nil }
        }
        for name in fields.listElements(.connection) {
            if let name = HTTPField.Name(String(name)) { remove(name) }
        }
        for name in Self.unstored { remove(name) }
        if self.shared {
            remove(.setCookie)
            for name in directives.privateFields { if let name = HTTPField.Name(name) { remove(name) } }
        }
        for name in directives.noCacheFields { if let name = HTTPField.Name(name) { remove(name) } }
        // The tags are kept in the entry itself; the own targeted fields stay, as the stored
        // response's freshness depends on them, and are removed from each answer.
        self.removeTagFields(&stored)
        return stored
    }

    /// Removes the fields meant for this cache alone: its own targeted fields and, unless
    /// exposed, the tag fields.
    func removeOwnFields(_ fields: inout HTTPFields) {
        for name in self.targetedFields where !name.isSame(as: .cdnCacheControl) && fields.has(name) {
            fields[name] = nil
        }
        self.removeTagFields(&fields)
    }

    /// Only fields that are there are removed: removing an absent one would still copy the
    /// fields' storage.
    private func removeTagFields(_ fields: inout HTTPFields) {
        guard !self.exposesTagFields else { return }
        if fields.has(.cacheTag) { fields[.cacheTag] = nil }
        if fields.has(.surrogateKey) { fields[.surrogateKey] = nil }
    }

    /// The tags of a response: `Cache-Tag` (comma-separated) and `Surrogate-Key` (space-separated).
    static func tags(_ fields: HTTPFields) -> [String] {
        guard fields.has(.cacheTag) || fields.has(.surrogateKey) else { return [] }
        var tags: [String] = fields.listElements(.cacheTag).map(String.init)
        for line in fields[values: .surrogateKey] {
            for tag in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) { tags.append(String(tag)) }
        }
        var seen: Set<String> = []
        return tags.filter { seen.insert($0).inserted }
    }

    /// Fields a `304` does not change in the stored response (RFC 9111 §3.2).
    private static let keptOn304: Set<HTTPField.Name> = [.contentLength, .contentEncoding, .contentRange]

    /// The stored fields updated with those of a `304` (RFC 9111 §3.2): each field the `304`
    /// carries replaces the stored lines of that name.
    func freshened(_ stored: HTTPFields, with notModified: HTTPFields) -> HTTPFields {
        let directives = self.directives(notModified)
        let incoming = self.storedFields(notModified, directives: directives)
        var result = stored
        var replaced: Set<HTTPField.Name> = []
        for field in incoming where !Self.keptOn304.contains(field.name) {
            if replaced.insert(field.name).inserted { result[field.name] = nil }
            result.append(field)
        }
        return result
    }
}

/// What a stored response's fields say, parsed once: its directives, freshness lifetime, `Date`,
/// `Vary` names, and the fields an answer from it carries.
///
/// A class: entries are copied on every lookup, and this is one reference to retain rather
/// than each of its fields.
final class Freshness: Sendable {
    let directives: CacheDirectives
    let lifetime: Int
    let dateValue: Int64
    let varyNames: [String]
    let answerFields: HTTPFields
    /// The fields of the last hit answered from this entry (see ``hitFields(age:ttl:cacheName:)``).
    private let lastHit = Mutex<HitFields?>(nil)

    private struct HitFields {
        let age: Int
        let ttl: Int
        let cacheName: String
        let fields: HTTPFields
    }

    init(directives: CacheDirectives, lifetime: Int, dateValue: Int64, varyNames: [String], answerFields: HTTPFields) {
        self.directives = directives
        self.lifetime = lifetime
        self.dateValue = dateValue
        self.varyNames = varyNames
        self.answerFields = answerFields
    }

    /// The fields of a hit's answer: the stored ones, `Age` and `Cache-Status: <name>; hit;
    /// ttl=<ttl>`. Ages and freshness count whole seconds, so every hit on an entry within one
    /// second answers the same fields: the last ones are kept and shared (no copy of the stored
    /// fields, no new field values, per hit).
    func hitFields(age: Int, ttl: Int, cacheName: String) -> HTTPFields {
        let kept = self.lastHit.withLock { last -> HTTPFields? in
            guard let last, last.age == age, last.ttl == ttl, last.cacheName == cacheName else { return nil }
            return last.fields
        }
        if let kept { return kept }
        var fields = self.answerFields
        // Stored fields never hold Age or this cache's Cache-Status: append, without a lookup.
        fields.append(HTTPField(name: .age, value: String(age)))
        fields.append(HTTPField(name: .cacheStatus, value: CacheStatus.hit(ttl: ttl).render(name: cacheName)))
        self.lastHit.withLock { $0 = HitFields(age: age, ttl: ttl, cacheName: cacheName, fields: fields) }
        return fields
    }
}

/// The request directives, with `Pragma: no-cache` standing for `Cache-Control: no-cache` when
/// the request has no `Cache-Control` (RFC 9111 §5.4).
func requestDirectives(_ fields: HTTPFields) -> CacheDirectives {
    if fields.has(.cacheControl) { return CacheDirectives(fields) }
    var directives = CacheDirectives()
    if fields.containsListElement("no-cache", in: .pragmaField) { directives.noCache = true }
    return directives
}

extension HTTPField.Name {
    static let pragmaField = HTTPField.Name("Pragma")!
}
