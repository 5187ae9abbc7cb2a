public import HTTPTypes
public import Strata
import Synchronization

/// The parameters a route's pattern captured, such as `id` in `/users/:id`.
public struct RouteParameters: Sendable, RequestValueKey {
    /// Stored in `RequestValues` under its own type.
    public typealias Value = RouteParameters

    private var storage: [(name: Substring, value: Substring)] = []

    /// The value captured for `name`.
    public subscript(name: String) -> Substring? {
        self.storage.first { $0.name == name }?.value
    }

    /// What a `**` pattern matched, `/`-separated.
    public var catchAll: Substring? { self["**"] }

    mutating func append(_ name: Substring, _ value: Substring) {
        self.storage.append((name, value))
    }
}

extension RequestValues {
    /// The parameters captured by the route that matched.
    public var routeParameters: RouteParameters {
        self[RouteParameters.self] ?? RouteParameters()
    }
}

/// A small router with path parameters.
///
/// Patterns are `/`-separated segments: a literal, `:name` for one segment, `*` for any one
/// segment, `**` for the rest of the path. Literals beat parameters. `HEAD` falls back to the
/// `GET` route; a path that matches under other methods gets 405 with `Allow`; an `OPTIONS`
/// request with no route of its own gets 204 with `Allow`; an unknown path gets 404. These are returned, not thrown, so every
/// middleware sees them as responses.
///
/// ```swift
/// let router = Router<BasicContext>()
/// router.get("/users/:id") { request, context in
///     let id = context.values.routeParameters["id"] ?? ""
///     return ServerResponse(status: .ok, body: .init(string: "user \(id)"))
/// }
/// ```
public final class Router<Context: MiddlewareContext>: HTTPResponder, Sendable {
    /// A route's handler.
    public typealias Handler = @Sendable (ServerRequest, Context) async throws -> ServerResponse

    private let root = Mutex(Node())

    /// Creates an empty router.
    public init() {}

    /// Adds a route for `method` on `pattern`; a later route for the same pair replaces it.
    public func on(_ pattern: String, method: HTTPRequest.Method, handler: @escaping Handler) {
        self.root.withLock { root in
            root.insert(segments: pattern.split(separator: "/")[...], method: method, handler: handler)
        }
    }

    /// Adds a `GET` route (which also answers `HEAD`).
    public func get(_ pattern: String, handler: @escaping Handler) { self.on(pattern, method: .get, handler: handler) }
    /// Adds a `POST` route.
    public func post(_ pattern: String, handler: @escaping Handler) {
        self.on(pattern, method: .post, handler: handler)
    }
    /// Adds a `PUT` route.
    public func put(_ pattern: String, handler: @escaping Handler) { self.on(pattern, method: .put, handler: handler) }
    /// Adds a `PATCH` route.
    public func patch(_ pattern: String, handler: @escaping Handler) {
        self.on(pattern, method: .patch, handler: handler)
    }
    /// Adds a `DELETE` route.
    public func delete(_ pattern: String, handler: @escaping Handler) {
        self.on(pattern, method: .delete, handler: handler)
    }

    public func respond(to request: ServerRequest, context: Context) async throws -> ServerResponse {
        let path = request.path
        let (handlers, parameters) = self.root.withLock { root -> ([HTTPRequest.Method: Handler]?, RouteParameters) in
            var parameters = RouteParameters()
            let node = root.match(segments: path.split(separator: "/")[...], parameters: &parameters)
            return (node?.handlers, parameters)
        }
        guard let handlers, !handlers.isEmpty else {
            if request.method == .options && path == "*" {
                return ServerResponse(status: .noContent)
            }
            return ServerResponse(error: HTTPError(.notFound))
        }
        let method = request.method
        guard let handler = handlers[method] ?? (method == .head ? handlers[.get] : nil) else {
            var allowed = Set(handlers.keys.map(\.rawValue))
            if allowed.contains("GET") { allowed.insert("HEAD") }
            allowed.insert("OPTIONS")
            let allow = allowed.sorted().joined(separator: ", ")
            if method == .options {
                return ServerResponse(status: .noContent, headerFields: [.allow: allow])
            }
            if !standardMethods.contains(method.rawValue) {
                return ServerResponse(error: HTTPError(.notImplemented))
            }
            return ServerResponse(error: HTTPError(.methodNotAllowed, headerFields: [.allow: allow]))
        }
        if !parameters.isEmpty {
            context.values[RouteParameters.self] = parameters
        }
        return try await handler(request, context)
    }

    private struct Node {
        var literals: [Substring: Node] = [:]
        /// The `:name` (or `*`) child, if any: an array of at most one, since a struct cannot
        /// hold itself directly.
        var parameterName: Substring?
        var parameterChild: [Node] = []
        var catchAll: [HTTPRequest.Method: Handler] = [:]
        var handlers: [HTTPRequest.Method: Handler] = [:]

        mutating func insert(segments: ArraySlice<Substring>, method: HTTPRequest.Method, handler: @escaping Handler) {
            guard let segment = segments.first else {
                self.handlers[method] = handler
                return
            }
            let rest = segments.dropFirst()
            if segment == "**" {
                self.catchAll[method] = handler
            } else if segment.hasPrefix(":") || segment == "*" {
                if self.parameterChild.isEmpty {
                    self.parameterName = segment == "*" ? segment : segment.dropFirst()
                    self.parameterChild = [Node()]
                }
                self.parameterChild[0].insert(segments: rest, method: method, handler: handler)
            } else {
                self.literals[segment, default: Node()].insert(segments: rest, method: method, handler: handler)
            }
        }

        func match(segments: ArraySlice<Substring>, parameters: inout RouteParameters) -> Node? {
            guard let segment = segments.first else {
                if !self.handlers.isEmpty { return self }
                if !self.catchAll.isEmpty {
                    parameters.append("**", "")
                    return Node(handlers: self.catchAll)
                }
                return nil
            }
            let rest = segments.dropFirst()
            if let literal = self.literals[segment], let found = literal.match(segments: rest, parameters: &parameters)
            {
                return found
            }
            if let name = self.parameterName, let child = self.parameterChild.first {
                var attempt = parameters
                attempt.append(name, segment)
                if let found = child.match(segments: rest, parameters: &attempt) {
                    parameters = attempt
                    return found
                }
            }
            if !self.catchAll.isEmpty {
                let start = segments.first?.startIndex
                let end = segments.last?.endIndex
                if let start, let end, let base = segments.first?.base {
                    parameters.append("**", base[start..<end])
                }
                return Node(handlers: self.catchAll)
            }
            return nil
        }

        init(handlers: [HTTPRequest.Method: Handler] = [:]) {
            self.handlers = handlers
        }
    }
}

extension RouteParameters {
    var isEmpty: Bool { self.storage.isEmpty }
}

private let standardMethods: Set<String> = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
]
