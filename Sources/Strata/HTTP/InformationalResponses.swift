public import HTTPTypes

/// Sends 1xx informational responses ahead of a request's final response, such as
/// `103 Early Hints` (RFC 8297) or an upstream's interim answers relayed by a proxy.
///
/// A handler finds one in ``MiddlewareContext/informationalResponses``; it is `nil` where the
/// host cannot send them (an adapter, an in-process test client), and sending does nothing once
/// the final response has started or when the client speaks HTTP/1.0, which has no 1xx.
///
/// ```swift
/// try await context.informationalResponses?.sendInformational(
///     HTTPResponse(status: .earlyHints, headerFields: [.link: "</app.css>; rel=preload; as=style"]))
/// ```
public protocol InformationalResponseSender: Sendable {
    /// Sends `response`, whose status must be 1xx other than 100 (the server answers
    /// `Expect: 100-continue` itself) and 101 (an upgrade is a final response here).
    ///
    /// - Returns: whether it was sent.
    @discardableResult
    func sendInformational(_ response: HTTPResponse) async throws -> Bool
}

extension MiddlewareContext {
    /// No informational responses: the default for contexts whose host cannot send them.
    public var informationalResponses: (any InformationalResponseSender)? { nil }
}
