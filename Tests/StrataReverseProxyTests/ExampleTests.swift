import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

/// The example as its own process: its flags, its status page, and its memory while a
/// gigabyte streams through it each way.
@Suite struct ExampleTests {
    @Test func theExampleProxiesWithItsFlagsAndShowsItsStatus() async throws {
        try await withEchoUpstream(name: "one") { upstream in
            let example = try await ExampleProcess(
                "ReverseProxyExample",
                arguments: [
                    "--upstream", "http://127.0.0.1:\(upstream)", "--lb", "least-conn", "--health", "/health",
                    "--health-interval", "0.2", "--via", "example", "--forwarded",
                ])
            defer { example.stop() }
            let curl = try ExternalProcess.curl()
            let answer = try await ExternalProcess.run(curl, ["-s", "http://127.0.0.1:\(example.port)/hello?x=1"])
            #expect(answer.stdout.hasPrefix("GET /hello?x=1\nupstream: one\n"))
            #expect(echoed(answer.stdout)["via"] == ["1.1 example"])
            #expect(echoed(answer.stdout)["forwarded"]?.first?.hasPrefix("for=127.0.0.1;") == true)
            // The health checks reach the upstream too.
            let status = try await ExternalProcess.run(curl, ["-s", "http://127.0.0.1:\(example.port)/_proxy"])
            let json = try #require(
                try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            let upstreams = try #require(json["upstreams"] as? [[String: Any]])
            #expect(upstreams.count == 1)
            #expect(upstreams.first?["upstream"] as? String == "http://127.0.0.1:\(upstream)")
            #expect(upstreams.first?["available"] as? Bool == true)
            #expect((upstreams.first?["requests"] as? Int ?? 0) >= 1)
        }
    }

    @Test func aGigabyteEachWayKeepsTheProxyUnder64MiB() async throws {
        let gigabyte = 1 << 30
        let router = Router<BasicContext>()
        router.post("/upload") { request, _ in
            var received = 0
            for try await chunk in request.body { received += chunk.readableBytes }
            return ServerResponse(status: .ok, body: ResponseBody(string: "\(received)"))
        }
        router.get("/download") { _, _ in
            let chunk = ByteBuffer(repeating: 0x61, count: 64 * 1024)
            return ServerResponse(
                status: .ok,
                body: ResponseBody(contentLength: gigabyte) { writer in
                    for _ in 0..<(gigabyte / chunk.readableBytes) { try await writer.write(chunk) }
                })
        }
        let server = try HTTPServerConfiguration(maxRequestBodySize: 2 << 30, requestBodyTimeout: .seconds(300))
        try await withLiveServer(responder: router, configuration: server, logger: quietLogger) { upstream in
            let example = try await ExampleProcess(
                "ReverseProxyExample", arguments: ["--upstream", "http://127.0.0.1:\(upstream)"])
            defer { example.stop() }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-proxy-\(UUID()).bin")
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: file) }
            let handle = try FileHandle(forWritingTo: file)
            try handle.truncate(atOffset: UInt64(gigabyte))
            try handle.close()
            let before = try example.memory()
            let curl = try ExternalProcess.curl()
            let upload = try await ExternalProcess.run(
                curl,
                ["-s", "-X", "POST", "-T", file.path, "-H", "Expect:", "http://127.0.0.1:\(example.port)/upload"],
                timeout: .seconds(600))
            #expect(upload.stdout == "\(gigabyte)")
            let download = try await ExternalProcess.run(
                curl,
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                    "http://127.0.0.1:\(example.port)/download",
                ],
                timeout: .seconds(600))
            #expect(download.stdout == "200 \(gigabyte)")
            let after = try example.memory()
            print("proxy memory: \(before.current >> 20) MiB before, peak \(after.peak >> 20) MiB after 1 GiB each way")
            #expect(after.peak < 64 << 20, "peak RSS \(after.peak >> 20) MiB")
        }
    }
}
