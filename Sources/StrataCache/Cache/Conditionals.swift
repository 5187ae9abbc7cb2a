import HTTPTypes
import Strata

/// Conditional requests as a cache meets them: answering the client's from a stored response
/// (RFC 9110 §13.2.2, RFC 9111 §4.3.2) and building its own to validate one (RFC 9111 §4.3.1).
enum Conditionals {
    private static let conditionalFields: [HTTPField.Name] = [
        .ifNoneMatch, .ifModifiedSince, .ifMatch, .ifUnmodifiedSince, .ifRange,
    ]

    static func isConditional(_ fields: HTTPFields) -> Bool {
        Self.conditionalFields.contains { fields.has($0) }
    }

    /// Whether a stored response with `stored` fields answers the request's conditionals
    /// with `304`: `If-None-Match` by weak comparison, else `If-Modified-Since` against
    /// `Last-Modified` (or `Date`).
    static func notModified(_ request: HTTPFields, stored: HTTPFields) -> Bool {
        if request.has(.ifNoneMatch) {
            guard let etag = stored.combinedValue(.eTag) else {
                return request.listElements(.ifNoneMatch).contains("*")
            }
            return request.listElements(.ifNoneMatch).contains { $0 == "*" || Self.weakMatch(String($0), etag) }
        }
        guard let since = request.combinedValue(.ifModifiedSince).flatMap({ HTTPDate.parse($0) }),
            let modified = (stored.combinedValue(.lastModified) ?? stored.combinedValue(.date)).flatMap({
                HTTPDate.parse($0)
            })
        else { return false }
        return modified <= since
    }

    /// The fields of a `304` made from a stored response's (RFC 9110 §15.4.5).
    static func notModifiedFields(_ fields: HTTPFields) -> HTTPFields {
        let kept: Set<HTTPField.Name> = [
            .cacheControl, .contentLocation, .date, .eTag, .expires, .vary, .lastModified, .age, .cacheStatus,
        ]
        var result = HTTPFields()
        for field in fields where kept.contains(field.name) { result.append(field) }
        return result
    }

    /// Weak comparison of two entity tags (RFC 9110 §8.8.3.2).
    static func weakMatch(_ a: String, _ b: String) -> Bool {
        Self.opaque(a[...]) == Self.opaque(b[...])
    }

    private static func opaque(_ tag: Substring) -> Substring {
        let trimmed = tag.trimmingOWS()
        return trimmed.hasPrefix("W/") ? trimmed.dropFirst(2) : trimmed
    }

    /// `head` without the client's conditional fields.
    static func withoutConditionals(_ head: HTTPRequest) -> HTTPRequest {
        var head = head
        for name in Self.conditionalFields { head.headerFields[name] = nil }
        return head
    }

    /// The request that validates a stored response with `stored` fields: the client's, without
    /// its own conditionals, asking with the stored `ETag` and `Last-Modified`; `nil` when the
    /// stored response has neither.
    static func validationRequest(for request: ServerRequest, stored: HTTPFields) -> ServerRequest? {
        let etag = stored.combinedValue(.eTag)
        let lastModified = stored.combinedValue(.lastModified)
        guard etag != nil || lastModified != nil else { return nil }
        var head = Self.withoutConditionals(request.head)
        head.method = .get
        if let etag { head.headerFields[.ifNoneMatch] = etag }
        if let lastModified { head.headerFields[.ifModifiedSince] = lastModified }
        return ServerRequest(head: head, body: request.body)
    }
}
