import Foundation
import HTTPTypes
import NIOCore
import Strata
import StrataCompression
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@Suite struct EventStreamTests {
    /// The server sends event 1, then waits until the client says it has decoded it. If the
    /// compressor held the event back, the client would never see it and its read would time out.
    @Test(arguments: [0, 200_000])
    func eventsArriveThroughTheCompressorBeforeTheStreamEnds(_ extra: Int) async throws {
        // A large event of poorly compressible text spans several output windows, all flushed.
        var generator = UInt64(42)
        let filler = String(
            (0..<extra).map { _ -> Character in
                generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Character(UnicodeScalar(UInt8(97 + (generator >> 33) % 26)))
            })
        let gate = Gate()
        let router = Router<BasicContext>()
        router.get("/events") { _, _ in
            ServerResponse(
                status: .ok, headerFields: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "data: 1\(filler)\n\n"))
                    await gate.wait()
                    try await writer.write(ByteBuffer(string: "data: 2\n\n"))
                })
        }
        router.post("/release") { _, _ in
            gate.open()
            return ServerResponse(status: .noContent)
        }
        let stack = MiddlewareStack(BasicContext.self) {
            try! ResponseCompressionMiddleware<BasicContext>()
        }.wrapping(router)
        let script = """
            import httpx, sys
            port = sys.argv[1]
            events = []
            try:
                with httpx.Client(timeout=10) as client:
                    with client.stream("GET", f"http://127.0.0.1:{port}/events", headers={"Accept-Encoding": "gzip"}) as response:
                        print("encoding", response.headers.get("content-encoding"))
                        for line in response.iter_lines():
                            if line.startswith("data:"):
                                events.append(line[:7])
                                if line.startswith("data: 1"):
                                    print("first", len(line))
                                    httpx.post(f"http://127.0.0.1:{port}/release", timeout=10)
            except httpx.ReadTimeout:
                print("timed out")
            print("events", ",".join(events))
            """
        try await withLiveServer(responder: stack) { port in
            let output = try await ExternalProcess.run(try ExternalProcess.python(), ["-c", script, "\(port)"])
            gate.open()  // Lets the handler finish whatever happened, so the server can stop.
            #expect(output.stdout.contains("encoding gzip"), "\(output.stdout) \(output.stderr)")
            #expect(output.stdout.contains("events data: 1,data: 2"), "\(output.stdout) \(output.stderr)")
            #expect(!output.stdout.contains("timed out"))
            #expect(output.stdout.contains("first \(7 + extra)"), "\(output.stdout)")
        }
    }
}
