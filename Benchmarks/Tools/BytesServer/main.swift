import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataServer

// StrataServer for scripts/bench-cache.sh: the bytes the cache serves on a hit, from a plain
// route with nothing in front. `GET /13` ("Hello, World!") and `GET /100k` (102,400 × "a"),
// with the fields nginx sends for the same files, so the cache's hit is measured against
// serving the same response directly.

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap(Int.init) ?? 8088
var logger = Logger(label: "bytes-server")
logger.logLevel = .warning
let fields: HTTPFields = [
    .contentType: "application/octet-stream", .lastModified: "Sun, 06 Dec 2026 10:00:00 GMT",
    .eTag: "\"6753ca60-d\"", .acceptRanges: "bytes", .cacheControl: "max-age=3600",
]
let router = Router<BasicContext>()
let small = ByteBuffer(string: "Hello, World!")
let large = ByteBuffer(repeating: UInt8(ascii: "a"), count: 102_400)
router.get("/13") { _, _ in ServerResponse(status: .ok, headerFields: fields, body: ResponseBody(buffer: small)) }
router.get("/100k") { _, _ in ServerResponse(status: .ok, headerFields: fields, body: ResponseBody(buffer: large)) }
let server = HTTPServer(
    responder: router, configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port), logger: logger)
try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
