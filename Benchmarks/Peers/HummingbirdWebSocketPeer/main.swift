import Hummingbird
import HummingbirdWebSocket

// A hummingbird-websocket echo server for scripts/bench-websocket.sh: every message back
// unchanged, 1 MiB frames and messages (so a 64 KiB message is one frame, as on Strata's
// /echo), no compression.

let arguments = CommandLine.arguments
let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 8082
let app = Application(
    router: Router(),
    server: .http1WebSocketUpgrade(configuration: .init(maxFrameSize: 1 << 20)) { request, _, _ in
        guard request.path == "/echo" else { return .dontUpgrade }
        return .upgrade([:]) { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                switch message {
                case .text(let text): try await outbound.write(.text(text))
                case .binary(let bytes): try await outbound.write(.binary(bytes))
                }
            }
        }
    },
    configuration: .init(address: .hostname("127.0.0.1", port: port))
)
try await app.runService()
