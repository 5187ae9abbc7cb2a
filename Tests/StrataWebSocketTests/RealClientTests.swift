import Foundation
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Testing

/// Python's `websockets` (an independent, widely used implementation) against the server.
@Suite struct RealClientTests {
    static let script = """
        import sys
        from websockets.sync.client import connect
        port, compression = sys.argv[1], sys.argv[2]
        path = "/echo" if compression == "none" else "/deflate"
        with connect(f"ws://127.0.0.1:{port}{path}", compression=None if compression == "none" else "deflate",
                     max_size=2**24, open_timeout=10, close_timeout=10) as ws:
            print("extensions", ws.response.headers.get("Sec-WebSocket-Extensions"))
            ws.send("hello κόσμε")
            print("text", ws.recv(timeout=10))
            payload = bytes(range(256)) * 4096
            ws.send(payload)
            print("binary", ws.recv(timeout=10) == payload)
            big = "x" * (3 * 2**20)
            ws.send([big[:2**20], big[2**20:]])  # a fragmented message
            print("big", ws.recv(timeout=10) == big)
            ws.ping(b"are you there").wait(timeout=10)
            print("pong ok")
            ws.close(code=4000, reason="done")
            print("closed", ws.close_code, ws.close_reason)
        """

    @Test(arguments: ["none", "deflate"])
    func pythonWebsocketsEchoes(_ compression: String) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.python(), ["-c", Self.script, "\(port)", compression])
            let lines = output.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("text hello κόσμε"), "\(output.stdout) \(output.stderr)")
            let extensions = lines.first { $0.hasPrefix("extensions") } ?? ""
            #expect(extensions.contains("permessage-deflate") == (compression == "deflate"), "\(extensions)")
            #expect(lines.contains("binary True"))
            #expect(lines.contains("big True"))
            #expect(lines.contains("pong ok"))
            #expect(
                lines.contains { $0.hasPrefix("closed 4000") }, "the code is echoed: \(output.stdout) \(output.stderr)")
        }
    }
}
