import HTTPTypes

/// One cache's member of the `Cache-Status` list (RFC 9211): what this cache did with a request.
struct CacheStatus: Sendable {
    /// Why the request went to the origin (RFC 9211 §2.2).
    enum Forward: String, Sendable, CaseIterable {
        case bypass, method, uriMiss = "uri-miss", varyMiss = "vary-miss", request, stale
    }

    var hit = false
    var forward: Forward?
    var forwardStatus: Int?
    /// Freshness left, in seconds; negative when stale.
    var ttl: Int?
    var stored = false
    var collapsed = false
    var detail: String?

    static func hit(ttl: Int) -> CacheStatus {
        var status = CacheStatus()
        status.hit = true
        status.ttl = ttl
        return status
    }

    /// `hit` and a `ttl`, nothing else: what ``hit(ttl:)`` makes.
    var isPlainHit: Bool {
        self.hit && self.ttl != nil && self.forward == nil && self.forwardStatus == nil && !self.stored
            && !self.collapsed && self.detail == nil
    }

    static func forwarded(_ forward: Forward) -> CacheStatus {
        var status = CacheStatus()
        status.forward = forward
        return status
    }

    /// Whether this is what a forwarded request the origin answered `200` says, with nothing
    /// else than whether it was stored: the status of most misses.
    var isForwardedOK: Bool {
        !self.hit && self.forward != nil && self.forwardStatus == 200 && self.ttl == nil && !self.collapsed
            && self.detail == nil
    }

    /// The list member, `Strata; fwd=uri-miss; fwd-status=200; stored`.
    func render(name: String) -> String {
        // Appended piece by piece into one allocation: no intermediate strings.
        var text = ""
        text.reserveCapacity(name.utf8.count + 64 + (self.detail?.utf8.count ?? 0))
        text.append(name)
        if self.hit { text.append("; hit") }
        if let forward = self.forward {
            text.append("; fwd=")
            text.append(forward.rawValue)
        }
        if let forwardStatus = self.forwardStatus {
            text.append("; fwd-status=")
            text.append(String(forwardStatus))
        }
        if let ttl = self.ttl {
            text.append("; ttl=")
            text.append(String(ttl))
        }
        if self.stored { text.append("; stored") }
        if self.collapsed { text.append("; collapsed") }
        if let detail = self.detail {
            text.append("; detail=")
            text.append(detail)
        }
        return text
    }
}

/// The `Cache-Status` fields of one cache: the common forwarded ones made once, the others
/// rendered for each response.
struct CacheStatusFields: Sendable {
    let name: String
    /// For each `Forward`, its field with `fwd-status=200`, without and with `stored`.
    private let forwardedOK: [(forward: CacheStatus.Forward, notStored: HTTPField, stored: HTTPField)]

    init(name: String) {
        self.name = name
        self.forwardedOK = CacheStatus.Forward.allCases.map { forward in
            var status = CacheStatus.forwarded(forward)
            status.forwardStatus = 200
            let notStored = HTTPField(name: .cacheStatus, value: status.render(name: name))
            status.stored = true
            return (forward, notStored, HTTPField(name: .cacheStatus, value: status.render(name: name)))
        }
    }

    /// The field saying `status`.
    func field(_ status: CacheStatus) -> HTTPField {
        if status.isForwardedOK, let made = self.forwardedOK.first(where: { $0.forward == status.forward }) {
            return status.stored ? made.stored : made.notStored
        }
        return HTTPField(name: .cacheStatus, value: status.render(name: self.name))
    }
}
