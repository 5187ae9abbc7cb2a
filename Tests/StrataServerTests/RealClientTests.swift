import Foundation
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import HelloExample

/// The Hello example through real clients over real sockets.
@Suite struct RealClientTests {
    @Test func curlGetsHelloWorld() async throws {
        try await withLiveServer(responder: buildResponder()) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(), ["-sS", "-i", "http://127.0.0.1:\(port)/"])
            #expect(output.status == 0, "\(output.stderr)")
            let response = try #require(parseResponses(output.stdout).first)
            #expect(response.status == 200)
            #expect(response.body == "Hello, World!")
            #expect(response.header("content-length") == "13")
            #expect(response.header("content-type") == "text/plain")
            #expect(response.header("x-request-id") != nil)
            #expect(response.header("date") != nil)
        }
    }

    @Test func curlStreamsAChunkedUploadBackUnchanged() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-upload-\(UUID().uuidString)")
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<(3 * 1024 * 1024 + 17)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try await withLiveServer(responder: buildResponder()) { port in
            let echoed = file.path + ".echo"
            defer { try? FileManager.default.removeItem(atPath: echoed) }
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(),
                [
                    "-sS", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file.path,
                    "-o", echoed, "-w", "%{http_code}", "http://127.0.0.1:\(port)/echo",
                ]
            )
            #expect(output.stdout == "200", "\(output.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: echoed)) == Data(bytes))
        }
    }

    @Test func curlSeesTheRequestIDMiddleware() async throws {
        try await withLiveServer(responder: buildResponder()) { port in
            let output = try await ExternalProcess.run(
                try ExternalProcess.curl(), ["-sS", "-i", "-H", "X-Request-ID: abc-123", "http://127.0.0.1:\(port)/"]
            )
            #expect(parseResponses(output.stdout).first?.header("x-request-id") == "abc-123")
        }
    }

    @Test func httpxKeepAliveStreamingAndHead() async throws {
        let script = """
            import httpx, json, sys, os
            port = int(sys.argv[1])
            out = {}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
                out["get"] = [client.get("/").text for _ in range(5)]
                r = client.head("/")
                out["head"] = [r.status_code, r.headers.get("content-length"), r.content.decode()]
                payload = os.urandom(1024 * 1024)
                def chunks():
                    for i in range(0, len(payload), 65536):
                        yield payload[i:i + 65536]
                r = client.post("/echo", content=chunks())
                out["echo_ok"] = r.content == payload
                out["echo_status"] = r.status_code
                r = client.post("/echo", content=b"x" * 1000)
                out["sized"] = [r.status_code, r.headers.get("content-length"), len(r.content)]
                out["missing"] = client.get("/missing").status_code
                out["method"] = [client.delete("/").status_code, client.delete("/").headers.get("allow")]
            print(json.dumps(out))
            """
        try await withLiveServer(responder: buildResponder()) { port in
            let scriptFile = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strata-httpx-\(UUID().uuidString).py")
            try script.write(to: scriptFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: scriptFile) }
            let output = try await ExternalProcess.run(try ExternalProcess.python(), [scriptFile.path, "\(port)"])
            #expect(output.status == 0, "\(output.stderr)")
            let result = try #require(
                try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
            #expect(result["get"] as? [String] == Array(repeating: "Hello, World!", count: 5))
            let head = try #require(result["head"] as? [Any])
            #expect(head[0] as? Int == 200)
            #expect(head[1] as? String == "13")
            #expect(head[2] as? String == "")
            #expect(result["echo_ok"] as? Bool == true)
            #expect(result["echo_status"] as? Int == 200)
            let sized = try #require(result["sized"] as? [Any])
            #expect(sized[1] as? String == "1000")
            #expect(sized[2] as? Int == 1000)
            #expect(result["missing"] as? Int == 404)
            let method = try #require(result["method"] as? [Any])
            #expect(method[0] as? Int == 405)
            #expect(method[1] as? String == "GET, HEAD, OPTIONS")
        }
    }
}
