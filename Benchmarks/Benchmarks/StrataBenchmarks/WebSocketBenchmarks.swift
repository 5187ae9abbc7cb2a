import Benchmark
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataWebSocket
import Synchronization

/// Counts the bytes an echo writes back, standing in for the socket.
final class CountingWriter: UpgradedConnectionWriter {
    let bytes = Atomic<Int>(0)

    func write(_ buffer: ByteBuffer) async throws {
        self.bytes.add(buffer.readableBytes, ordering: .relaxed)
    }

    func write(contentsOf buffers: [ByteBuffer]) async throws {
        for buffer in buffers { self.bytes.add(buffer.readableBytes, ordering: .relaxed) }
    }

    func finish() {}
}

/// The bytes a client sends, delivered in one read.
struct OneRead: AsyncSequence, Sendable {
    let buffer: ByteBuffer
    func makeAsyncIterator() -> Iterator { Iterator(buffer: self.buffer) }
    struct Iterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        mutating func next() async throws -> ByteBuffer? {
            defer { self.buffer = nil }
            return self.buffer
        }
    }
}

/// `count` masked binary frames of `size` bytes, then a close frame.
func clientFrames(size: Int, count: Int) -> ByteBuffer {
    let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    var frames = ByteBuffer()
    for _ in 0..<count {
        frames.writeInteger(UInt8(0x82))
        if size < 126 {
            frames.writeInteger(UInt8(0x80 | size))
        } else {
            frames.writeInteger(UInt8(0x80 | 127))
            frames.writeInteger(UInt64(size))
        }
        frames.writeBytes(mask)
        frames.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0) ^ mask[$0 % 4] })
    }
    frames.writeBytes([0x88, 0x82] + mask + [0x03 ^ 0x12, 0xE8 ^ 0x34])
    return frames
}

/// The whole server-side path of an echo, in process: frames parsed and unmasked, messages
/// handed to the handler and sent back through the write lock, then the close handshake.
func webSocketBenchmarks() {
    var configuration = WebSocketConfiguration()
    configuration.pingInterval = nil
    guard let endpoint = try? WebSocketEndpoint(configuration: configuration) else {
        fatalError("the benchmark's WebSocket configuration is valid")
    }
    let handshake = HTTPRequest(
        method: .get, scheme: "http", authority: "localhost", path: "/echo",
        headerFields: [
            .upgrade: "websocket", .connection: "Upgrade", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==",
            .secWebSocketVersion: "13",
        ])
    let source = ContextSource(logger: Logger(label: "bench"))
    for (size, count) in [(64, 1000), (65536, 16)] {
        let input = clientFrames(size: size, count: count)
        Benchmark(
            "WebSocket: echo \(count) × \(size)-byte messages",
            configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], scalingFactor: .one)
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                let response = endpoint.upgrade(ServerRequest(head: handshake), context: BasicContext(source: source)) {
                    socket in
                    for try await message in socket.messages { try await socket.send(message) }
                }
                guard let upgrade = response.upgrade else { fatalError("the handshake is valid") }
                let writer = CountingWriter()
                try await upgrade.run(
                    UpgradedConnection(
                        inbound: .init(OneRead(buffer: input)), outbound: writer, logger: source.logger,
                        remoteAddress: nil))
                blackHole(writer.bytes.load(ordering: .relaxed))
            }
        }
    }
}
