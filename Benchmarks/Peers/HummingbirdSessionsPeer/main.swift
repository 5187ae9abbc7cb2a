import Hummingbird
import HummingbirdAuth

// Hummingbird 2 + hummingbird-auth's SessionMiddleware with its memory persist driver, for
// scripts/bench-sessions.sh. GET /count reads the session's counter and writes it back plus
// one (the session is one Int); GET /plain never touches the session.

let arguments = CommandLine.arguments
let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8087

typealias Context = BasicSessionRequestContext<Int, String>
let router = Router(context: Context.self)
router.add(middleware: SessionMiddleware(storage: MemoryPersistDriver()))
router.get("/count") { _, context -> String in
    // setSession starts a new session (a new cookie); updateSession writes the existing one.
    if let count = context.sessions.session {
        _ = context.sessions.updateSession(count + 1)
        return "\(count + 1)"
    }
    context.sessions.setSession(1)
    return "1"
}
router.get("/plain") { _, _ -> String in "plain" }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
