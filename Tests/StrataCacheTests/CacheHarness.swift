import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataTestSupport
import StrataTesting
import Synchronization

@testable import StrataCache

/// An origin whose answers a test scripts, counting the requests that reach it.
final class ScriptedOrigin: HTTPResponder, Sendable {
    typealias Context = BasicContext
    typealias Script = @Sendable (HTTPRequest, Int) async throws -> ServerResponse

    private let seen = Mutex<[HTTPRequest]>([])
    private let script: Mutex<Script>

    init(_ script: @escaping Script) {
        self.script = Mutex(script)
    }

    /// The requests that reached the origin.
    var requests: [HTTPRequest] { self.seen.withLock { $0 } }
    var count: Int { self.seen.withLock { $0.count } }

    /// Replaces the script.
    func answer(_ script: @escaping Script) {
        self.script.withLock { $0 = script }
    }

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        let number = self.seen.withLock { seen in
            seen.append(request.head)
            return seen.count
        }
        let script = self.script.withLock { $0 }
        return try await script(request.head, number)
    }
}

/// A cache in front of a scripted origin, on a clock the test moves.
struct CacheHarness {
    let clock: ManualClock
    let origin: ScriptedOrigin
    let cache: HTTPCache
    let store: MemoryCacheStore
    let client: TestClient<HTTPCacheResponder<ScriptedOrigin>>
    let logs: LogRecorder

    init(
        _ configure: (inout HTTPCacheConfiguration) -> Void = { _ in },
        clock: ManualClock = ManualClock(),
        store: MemoryCacheStore? = nil,
        origin script: @escaping ScriptedOrigin.Script
    ) throws {
        var configuration = HTTPCacheConfiguration()
        configure(&configuration)
        let logs = LogRecorder()
        let store = store ?? MemoryCacheStore(clock: clock)
        self.clock = clock
        self.store = store
        self.logs = logs
        self.origin = ScriptedOrigin(script)
        self.cache = try HTTPCache(store: store, configuration: configuration, clock: clock, logger: logs.logger())
        self.client = TestClient(responder: self.cache.responder(origin: self.origin), logger: logs.logger())
    }

    func get(_ path: String = "/", _ fields: HTTPFields = [:]) async throws -> TestResponse {
        try await self.client.execute(.get, path, headerFields: fields)
    }

    func send(_ method: HTTPRequest.Method, _ path: String = "/", _ fields: HTTPFields = [:]) async throws
        -> TestResponse
    {
        try await self.client.execute(method, path, headerFields: fields)
    }

    /// The clock's time as an HTTP date, `offset` seconds from now.
    func date(_ offset: Int64 = 0) -> String {
        HTTPDate.format(secondsSince1970: self.clock.now().secondsSince1970 + offset)
    }

    func advance(_ seconds: Int) {
        self.clock.advance(by: .seconds(seconds))
    }
}

/// A response from the origin: `fields`, a `Date` from `clock` unless given, and `body`.
func reply(
    _ status: HTTPResponse.Status = .ok, _ fields: HTTPFields = [:], body: String = "body", clock: ManualClock? = nil
) -> ServerResponse {
    var fields = fields
    if let clock, fields[.date] == nil {
        fields[.date] = HTTPDate.format(secondsSince1970: clock.now().secondsSince1970)
    }
    return ServerResponse(status: status, headerFields: fields, body: ResponseBody(string: body))
}

extension TestResponse {
    /// This response's own `Cache-Status` member.
    var cacheStatus: String { self.headerFields[.cacheStatus] ?? "" }
}

extension HTTPField.Name {
    static let xTest = HTTPField.Name("X-Test")!
    static let xSecret = HTTPField.Name("X-Secret")!
    static let pragma = HTTPField.Name("Pragma")!
}
