import Foundation
import HTTPTypes
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Testing

@testable import WebSocketExample

/// The example over real sockets: Python's websockets in the chat, and Chromium on the page.
@Suite struct WebSocketExampleTests {
    @Test func pythonClientsChatInARoomWithAndWithoutCompression() async throws {
        let script = """
            import sys
            from websockets.sync.client import connect
            port = sys.argv[1]
            url = f"ws://127.0.0.1:{port}/chat?room=python"
            with connect(url, compression="deflate") as alice, connect(url, compression=None) as bob:
                print("alice", alice.response.headers.get("Sec-WebSocket-Extensions"))
                print("bob", bob.response.headers.get("Sec-WebSocket-Extensions"))
                print("alice sees", alice.recv(timeout=10))
                alice.send("alice: hi bob " + "!" * 200)
                print("bob got", bob.recv(timeout=10)[:13])
                print("alice got", alice.recv(timeout=10)[:13])
            """
        try await withLiveServer(responder: try buildResponder()) { port in
            let output = try await ExternalProcess.run(try ExternalProcess.python(), ["-c", script, "\(port)"])
            let lines = output.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("alice permessage-deflate"), "\(output.stdout) \(output.stderr)")
            #expect(lines.contains("bob None"))
            #expect(lines.contains("alice sees * someone joined python"))
            #expect(lines.contains("bob got alice: hi bob"))
            #expect(lines.contains("alice got alice: hi bob"))
        }
    }

    /// Pinned to one CPU (`taskset -c 0`), the example runs one event loop, not one per CPU of
    /// the machine: two busy loops time-sliced on one CPU made every connection of the idle one
    /// wait a whole kernel slice, the echo's p99 (issue 17).
    @Test func pinnedToOneCPUTheServerRunsOneEventLoopAndEchoes() async throws {
        let example = try await ExampleProcess("WebSocketExample", cpus: "0")
        defer { example.stop() }
        let script = """
            import sys
            from websockets.sync.client import connect
            with connect(f"ws://127.0.0.1:{sys.argv[1]}/echo", compression=None) as socket:
                echoed = 0
                for index in range(200):
                    socket.send(bytes([index % 256]) * 64)
                    echoed += socket.recv(timeout=10) == bytes([index % 256]) * 64
                print("echoed", echoed)
            """
        let output = try await ExternalProcess.run(try ExternalProcess.python(), ["-c", script, "\(example.port)"])
        #expect(output.stdout.contains("echoed 200"), "\(output.stdout) \(output.stderr)")
        let loops = try example.threadNames().filter { $0.hasPrefix("NIO-ELT-") || $0.hasPrefix("NIO-SGLTN-") }
        #expect(loops.count == 1, "event loop threads: \(loops)")
    }

    /// A loop count chosen for NIO's singleton wins over the affinity rule.
    @Test func aChosenSingletonLoopCountIsRespectedWhenPinned() async throws {
        let example = try await ExampleProcess(
            "WebSocketExample", cpus: "0", environment: ["NIO_SINGLETON_GROUP_LOOP_COUNT": "3"])
        defer { example.stop() }
        let loops = try example.threadNames().filter { $0.hasPrefix("NIO-ELT-") || $0.hasPrefix("NIO-SGLTN-") }
        #expect(loops.count == 3, "event loop threads: \(loops)")
        #expect(loops.allSatisfy { $0.hasPrefix("NIO-SGLTN-") })
    }

    @Test func theAffinityMaskIsCountedAsNprocCountsIt() async throws {
        let nproc = try await ExternalProcess.run(try ExternalProcess.find("nproc"), ["--all"])
        let allowed = try await ExternalProcess.run(try ExternalProcess.find("nproc"), [])
        let count = try #require(HTTPServerEventLoops.allowedCPUCount)
        // nproc without --all counts the affinity mask (and OMP_NUM_THREADS, unset here).
        #expect(count == Int(allowed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(count <= Int(nproc.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
    }

    @Test func chromiumChatsThroughTheExamplePage() async throws {
        let hub = WebSocketHub()
        let router = try buildResponder(hub: hub)
        // Holds the page's load event until the browser joined the room and left it again.
        router.get("/wait") { _, _ in
            let deadline = ContinuousClock.now + .seconds(30)
            var joined = false
            while ContinuousClock.now < deadline {
                let members = hub.subscriberCount(of: "browser")
                if members > 0 { joined = true }
                if joined && members == 0 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            return ServerResponse(status: .noContent)
        }
        try await withLiveServer(responder: router) { port in
            let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
                "strata-chromium-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: profile) }
            let output = try await ExternalProcess.run(
                try ExternalProcess.chromium(),
                [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--user-data-dir=\(profile.path)", "--dump-dom",
                    "http://127.0.0.1:\(port)/?auto=chromium&room=browser",
                ],
                timeout: .seconds(90)
            )
            let status =
                output.stdout.components(separatedBy: "<span id=\"status\">").dropFirst().first?.prefix(40) ?? ""
            #expect(status.hasPrefix("echoed<"), "status: \(status); \(output.stderr.suffix(800))")
            #expect(output.stdout.contains("chromium: hello from the browser"))
        }
    }

    @Test func roomNamesAreSanitised() {
        #expect(roomName("room=kitchen") == "kitchen")
        #expect(roomName("a=1&room=b-2_c") == "b-2_c")
        #expect(roomName("room=../etc") == "lobby")
        #expect(roomName(nil) == "lobby")
    }
}
