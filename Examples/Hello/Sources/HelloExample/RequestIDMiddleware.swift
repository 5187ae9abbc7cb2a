import HTTPTypes
import Strata
import Synchronization

/// Gives every response an `X-Request-ID`: the client's own when it sent a sensible one, else a
/// new one. It shows the shape of a middleware: look at the request, call `next`, change the
/// response.
struct RequestIDMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    static var fieldName: HTTPField.Name { HTTPField.Name("X-Request-ID")! }

    func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        let id: String
        if let sent = request.headerFields[Self.fieldName], (1...64).contains(sent.utf8.count),
            sent.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            id = sent
        } else {
            id = String(requestCounter.add(1, ordering: .relaxed).newValue, radix: 16)
        }
        var response = try await next(request, context)
        response.headerFields[Self.fieldName] = id
        return response
    }
}

/// Numbers generated request IDs; shared by every instance of the middleware.
private let requestCounter = Atomic<UInt64>(0)
