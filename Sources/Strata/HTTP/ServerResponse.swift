public import HTTPTypes

/// An HTTP response as a middleware sees it: the head, a body writer, and an optional protocol
/// upgrade.
public struct ServerResponse: Sendable {
    /// Status and header fields.
    public var head: HTTPResponse
    /// The body, written when the server sends the response.
    public var body: ResponseBody
    /// Set with status 101 to take over the connection after the response head is sent.
    public var upgrade: ConnectionUpgrade?

    /// Creates a response.
    ///
    /// When `body` has a known length and `headerFields` has no `Content-Length`, the server sends
    /// one; otherwise the body is sent chunked (or delimited by closing, for HTTP/1.0 clients).
    @inlinable
    public init(head: HTTPResponse, body: ResponseBody = .empty, upgrade: ConnectionUpgrade? = nil) {
        self.head = head
        self.body = body
        self.upgrade = upgrade
    }

    /// Creates a response from a status, header fields and a body.
    @inlinable
    public init(status: HTTPResponse.Status, headerFields: HTTPFields = [:], body: ResponseBody = .empty) {
        self.head = HTTPResponse(status: status, headerFields: headerFields)
        self.body = body
        self.upgrade = nil
    }

    /// The response status.
    @inlinable
    public var status: HTTPResponse.Status {
        get { self.head.status }
        set { self.head.status = newValue }
    }

    /// The response's header fields.
    @inlinable
    public var headerFields: HTTPFields {
        get { self.head.headerFields }
        set { self.head.headerFields = newValue }
    }
}
