import HTTPTypes
import NIOCore
import Strata
import StrataTesting
import Testing

@Suite struct BodyTests {
    func stream(_ chunks: [String]) -> RequestBody {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        for chunk in chunks { continuation.yield(ByteBuffer(string: chunk)) }
        continuation.finish()
        return RequestBody(stream: stream)
    }

    @Test func anOpaqueBodyKeepsTheHostsValueAndRefusesToBeRead() async throws {
        let body = ResponseBody(opaque: "the host's body", contentLength: 42)
        #expect(body.isOpaque)
        #expect(body.opaqueValue as? String == "the host's body")
        #expect(body.contentLength == 42)
        #expect(body.buffer == nil)
        var writer: any ResponseBodyWriter = CountingWriter()
        await #expect(throws: OpaqueResponseBodyError.self) { try await body.write(to: &writer) }
        #expect(!ResponseBody(string: "x").isOpaque)
        #expect(ResponseBody(string: "x").opaqueValue == nil)
    }

    @Test func requestBodiesTellBuffersFromStreams() {
        #expect(RequestBody(buffer: ByteBuffer(string: "abc")).buffer == ByteBuffer(string: "abc"))
        #expect(RequestBody(buffer: ByteBuffer(string: "abc")).underlyingStream == nil)
        let streamed = self.stream(["a"])
        #expect(streamed.buffer == nil)
        #expect(streamed.underlyingStream != nil)
    }

    @Test func collectGathersEveryChunk() async throws {
        let body = try await self.stream(["ab", "cd", "e"]).collect(upTo: 5)
        #expect(String(buffer: body) == "abcde")
    }

    @Test func collectThrowsAsSoonAsTheLimitIsPassed() async throws {
        await #expect(throws: RequestBodyTooLargeError.self) {
            _ = try await self.stream(["ab", "cd", "e"]).collect(upTo: 4)
        }
        let declared = RequestBody(stream: AsyncStream<ByteBuffer> { $0.finish() }, expectedLength: 100)
        await #expect(throws: RequestBodyTooLargeError.self) { _ = try await declared.collect(upTo: 99) }
        #expect(RequestBodyTooLargeError(limit: 4).status == .contentTooLarge)
    }

    @Test func bufferBodyIteratesOnceAndEmptyNotAtAll() async throws {
        var chunks = 0
        for try await _ in RequestBody(buffer: ByteBuffer(string: "x")) { chunks += 1 }
        for try await _ in RequestBody.empty { chunks += 10 }
        #expect(chunks == 1)
    }

    /// Upper-cases what passes through and counts finishes, like a compression transform would.
    struct UppercaseWriter: ResponseBodyWriter {
        var parent: any ResponseBodyWriter
        var finished = false

        mutating func write(_ buffer: ByteBuffer) async throws {
            try await self.parent.write(ByteBuffer(string: String(buffer: buffer).uppercased()))
        }

        mutating func finish(trailers: HTTPFields?) async throws {
            guard !self.finished else { return }
            self.finished = true
            try await self.parent.write(ByteBuffer(string: "!"))
            try await self.parent.finish(trailers: trailers)
        }
    }

    @Test func transformedBodiesWrapTheWriterAndFinishOnce() async throws {
        let responder = ClosureResponder<BasicContext> { _, _ in
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "ab"))
                try await writer.write(ByteBuffer(string: "c"))
                try await writer.finish(trailers: [.init("X-Sum")!: "3"])
            }
            return ServerResponse(
                status: .ok, body: body.transformed(contentLength: nil) { UppercaseWriter(parent: $0) })
        }
        let response = try await TestClient(responder: responder).execute(.get, "/")
        #expect(response.bodyString == "ABC!")
        #expect(response.trailers?[.init("X-Sum")!] == "3")
        #expect(response.contentLength == nil)
    }

    @Test func streamBodyConvenience() async throws {
        let responder = ClosureResponder<BasicContext> { _, _ in
            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            continuation.yield(ByteBuffer(string: "x"))
            continuation.yield(ByteBuffer(string: "y"))
            continuation.finish()
            return ServerResponse(status: .ok, body: ResponseBody(stream: stream))
        }
        #expect(try await TestClient(responder: responder).execute(.get, "/").bodyString == "xy")
    }

    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualClock(now: Timestamp(secondsSince1970: 100))
        #expect(clock.now().secondsSince1970 == 100)
        clock.advance(by: .milliseconds(1500))
        #expect(clock.now().secondsSince1970 == 101)
        #expect(clock.now() - Timestamp(secondsSince1970: 100) == .milliseconds(1500))
        #expect(SystemWallClock().now().secondsSince1970 > 1_700_000_000)
    }
}

/// Counts what it is given.
struct CountingWriter: ResponseBodyWriter {
    var bytes = 0
    mutating func write(_ buffer: ByteBuffer) async throws { self.bytes += buffer.readableBytes }
    mutating func finish(trailers: HTTPFields?) async throws {}
}
