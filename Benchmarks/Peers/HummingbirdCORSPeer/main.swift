import Hummingbird
import Strata
import StrataCORS
import StrataHummingbird

// Hummingbird 2 with CORS for scripts/bench-adapters.sh: `--mode native` uses Hummingbird's own
// CORSMiddleware, `--mode strata` StrataCORS through the StrataHummingbird adapter; both allow
// one origin and answer GET / with "Hello, World!".

let arguments = CommandLine.arguments
let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8083
let mode = arguments.firstIndex(of: "--mode").map { arguments[$0 + 1] } ?? "native"
let origin = "https://app.example"

let router = Router()
if mode == "strata" {
    var configuration = CORSConfiguration(allowedOrigins: [origin])
    configuration.allowedMethods = ["GET", "POST", "HEAD"]
    configuration.allowedRequestHeaders = ["Accept", "Authorization", "Content-Type"]
    router.add(
        middleware: StrataMiddleware(
            try CORSMiddleware<HummingbirdContext<BasicRequestContext>>(configuration: configuration)))
} else {
    router.add(middleware: Hummingbird.CORSMiddleware(allowOrigin: .oneOf(origin)))
}
router.get("/") { _, _ in "Hello, World!" }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
