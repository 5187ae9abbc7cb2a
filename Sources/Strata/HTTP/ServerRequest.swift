public import HTTPTypes

/// An HTTP request as a middleware sees it: the head and a streaming body.
public struct ServerRequest: Sendable {
    /// Method, target, and header fields.
    public var head: HTTPRequest
    /// The request body, read at most once.
    public var body: RequestBody

    /// Creates a request.
    @inlinable
    public init(head: HTTPRequest, body: RequestBody = .empty) {
        self.head = head
        self.body = body
    }

    /// The request method.
    @inlinable
    public var method: HTTPRequest.Method { self.head.method }

    /// The request's header fields.
    @inlinable
    public var headerFields: HTTPFields {
        get { self.head.headerFields }
        set { self.head.headerFields = newValue }
    }

    /// The path of the request target, without the query.
    public var path: Substring {
        guard let target = self.head.path else { return "/" }
        if let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            return target[..<query]
        }
        return target[...]
    }

    /// The query of the request target (after `?`, without it), or `nil` when there is none.
    public var query: Substring? {
        guard let target = self.head.path, let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else {
            return nil
        }
        return target[target.index(after: mark)...]
    }
}
