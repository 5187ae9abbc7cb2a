import HTTPTypes
import Hummingbird
import Synchronization

// The same two routes as HelloExample, with the same one middleware, on Hummingbird 2.

private let requestCounter = Atomic<UInt64>(0)

struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    static var fieldName: HTTPField.Name { HTTPField.Name("X-Request-ID")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let id: String
        if let sent = request.headers[Self.fieldName], (1...64).contains(sent.utf8.count),
            sent.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            id = sent
        } else {
            id = String(requestCounter.add(1, ordering: .relaxed).newValue, radix: 16)
        }
        var response = try await next(request, context)
        response.headers[Self.fieldName] = id
        return response
    }
}

let arguments = CommandLine.arguments
let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8081
let router = Router()
router.add(middleware: RequestIDMiddleware())
let hello = ByteBuffer(string: "Hello, World!")
router.get("/") { _, _ in
    Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: hello))
}
router.post("/echo") { request, _ in
    Response(
        status: .ok, headers: [.contentType: request.headers[.contentType] ?? "application/octet-stream"],
        body: .init(asyncSequence: request.body))
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
