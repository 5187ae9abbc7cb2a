public import HTTPTypes
import NIOCore
import Strata
public import StrataTesting

/// What a browser keeps of the session cookie.
public struct Jar: Sendable {
    public var name: String
    public var value: String?

    public init(name: String = "__Host-session", value: String? = nil) {
        self.name = name
        self.value = value
    }

    /// Takes the session cookie a response sets (a cleared cookie empties the jar).
    public mutating func take(_ response: TestResponse) {
        for field in response.headerFields where field.name == .setCookie {
            guard let cookie = Cookie(setCookieValue: field.value), cookie.name == self.name else { continue }
            self.value = (cookie.maxAge ?? 1) <= 0 || cookie.value.isEmpty ? nil : cookie.value
        }
    }

    public var headers: HTTPFields {
        guard let value else { return [:] }
        return [.cookie: "\(self.name)=\(value)"]
    }
}

extension TestClient {
    /// Sends a request with the jar's cookie and keeps what the response sets.
    public func send(
        _ method: HTTPRequest.Method, _ path: String, jar: inout Jar, body: String? = nil
    ) async throws -> TestResponse {
        var fields = jar.headers
        if body != nil { fields[.contentType] = "application/x-www-form-urlencoded" }
        let response = try await self.execute(
            method, path, headerFields: fields, body: body.map { .init(buffer: ByteBuffer(string: $0)) } ?? .empty)
        jar.take(response)
        return response
    }
}

/// Polls `condition` until it holds or `limit` has passed; whether it held. A bound for a
/// loaded machine, not a timing assertion.
public func eventually(
    within limit: Duration = .seconds(60), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
