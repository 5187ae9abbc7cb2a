public import HTTPTypes

/// An error that knows which HTTP response it should become.
///
/// Servers and adapters turn any thrown error conforming to this into its response; any other
/// error becomes a 500 whose body says nothing about the error.
public protocol HTTPResponseError: Error {
    /// The response status.
    var status: HTTPResponse.Status { get }
    /// Extra header fields for the response (for example `Retry-After` or `Allow`).
    var headerFields: HTTPFields { get }
    /// A message that is safe to show the client, sent as a `text/plain` body. `nil` for none.
    var publicMessage: String? { get }
}

extension HTTPResponseError {
    /// No extra fields by default.
    public var headerFields: HTTPFields { [:] }
    /// No public message by default: the body is the status's reason phrase.
    public var publicMessage: String? { nil }
}

/// A thrown HTTP status: `throw HTTPError(.notFound)`.
public struct HTTPError: HTTPResponseError, Sendable, CustomStringConvertible {
    /// The response status.
    public var status: HTTPResponse.Status
    /// Extra response header fields.
    public var headerFields: HTTPFields
    /// A message safe to send to the client, or `nil` for the reason phrase.
    public var publicMessage: String?

    /// Creates an error that becomes a response with `status`.
    ///
    /// - Parameters:
    ///   - status: The response status.
    ///   - headerFields: Extra response header fields.
    ///   - message: A message safe to send to the client.
    public init(_ status: HTTPResponse.Status, headerFields: HTTPFields = [:], message: String? = nil) {
        self.status = status
        self.headerFields = headerFields
        self.publicMessage = message
    }

    public var description: String {
        "HTTPError(\(self.status.code)\(self.publicMessage.map { ": \($0)" } ?? ""))"
    }
}

/// A request body was larger than the limit its reader set.
///
/// Thrown by ``RequestBody/collect(upTo:)`` and by the server's body stream; becomes a 413.
public struct RequestBodyTooLargeError: HTTPResponseError, Sendable, CustomStringConvertible {
    /// The limit that was exceeded, in bytes.
    public let limit: Int

    /// Creates the error for `limit`.
    public init(limit: Int) {
        self.limit = limit
    }

    /// 413 Content Too Large.
    public var status: HTTPResponse.Status { .contentTooLarge }
    /// The connection closes: the rest of the body is not read.
    public var headerFields: HTTPFields { [.connection: "close"] }
    /// Says what the limit is.
    public var publicMessage: String? { "Request body is larger than \(self.limit) bytes" }
    public var description: String { "request body larger than \(self.limit) bytes" }
}

extension ServerResponse {
    /// The response an error becomes: its own status, fields and public message for an
    /// ``HTTPResponseError``, else a 500 that says nothing about the error.
    ///
    /// Servers and adapters use this for errors that escape the stack; a middleware that must
    /// decorate every response (CORS, for one) uses it to turn a thrown error into a response it
    /// can add to.
    public init(error: any Error) {
        if let error = error as? any HTTPResponseError {
            var fields = error.headerFields
            fields[.contentType] = "text/plain; charset=utf-8"
            self.init(
                status: error.status,
                headerFields: fields,
                body: ResponseBody(string: error.publicMessage ?? error.status.reasonPhrase)
            )
        } else {
            self.init(
                status: .internalServerError,
                headerFields: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(string: "Internal Server Error")
            )
        }
    }
}
