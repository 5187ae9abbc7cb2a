import HTTPTypes
public import Strata

/// Appends one element to `Vary`, as another middleware in the stack would, so tests can check
/// that a middleware merges `Vary` instead of overwriting it.
public struct AppendVary<Context: MiddlewareContext>: HTTPMiddleware {
    let element: String

    public init(_ element: String) {
        self.element = element
    }

    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var response = try await next(request, context)
        response.headerFields.appendListElement(self.element, to: .vary)
        return response
    }
}
