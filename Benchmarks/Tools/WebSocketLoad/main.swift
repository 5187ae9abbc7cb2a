import Foundation
import NIOCore
import NIOPosix

// A closed-loop WebSocket echo load generator for scripts/bench-websocket.sh.
//
//     WebSocketLoad --port 18090 --connections 50 --size 64 --seconds 10 [--warmup 1] [--inflight 1]
//         [--per-connection FILE]
//
// Each connection keeps `--inflight` masked binary messages in flight: every echo that comes
// back sends the next one.
// Everything runs on one event loop with prebuilt frames, so the generator costs little CPU
// next to the server. Prints "messages_per_second p50_us p99_us p999_us" for the measured
// window; with --per-connection, also writes one line per connection to FILE: its index, local
// port, echoes, p50, p99 and maximum in microseconds (where the tail sits).

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    arguments.firstIndex(of: name).flatMap { Int(arguments[$0 + 1]) } ?? fallback
}
let port = option("--port", 18090)
let connections = option("--connections", 50)
let size = option("--size", 64)
let seconds = option("--seconds", 10)
let warmup = option("--warmup", 1)
/// Messages each connection keeps in flight (1: strictly one round trip at a time).
let inflight = option("--inflight", 1)
let perConnectionFile = arguments.firstIndex(of: "--per-connection").flatMap {
    $0 + 1 < arguments.count ? arguments[$0 + 1] : nil
}

/// The one masked binary frame every connection sends.
let frame: ByteBuffer = {
    let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    var frame = ByteBuffer()
    frame.writeInteger(UInt8(0x82))
    if size < 126 {
        frame.writeInteger(UInt8(0x80 | size))
    } else if size <= 0xFFFF {
        frame.writeInteger(UInt8(0x80 | 126))
        frame.writeInteger(UInt16(size))
    } else {
        frame.writeInteger(UInt8(0x80 | 127))
        frame.writeInteger(UInt64(size))
    }
    frame.writeBytes(mask)
    frame.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0) ^ mask[$0 % 4] })
    return frame
}()

/// Shared by every connection; they all run on the one event loop, so no locking.
final class Tally: @unchecked Sendable {
    var measuring = false
    var stopped = false
    var count = 0
    var latencies: [UInt32] = []
}
let tally = Tally()

final class EchoLoop: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var buffer = ByteBuffer()
    private var open = false
    private var received = 0
    /// When each message in flight was sent, oldest first (echoes come back in order).
    private var sentAt = CircularBuffer<NIODeadline>()
    /// This connection's measured round trips, in microseconds.
    var latencies: [UInt32] = []

    func channelActive(context: ChannelHandlerContext) {
        let request =
            "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&bytes)
        if !self.open {
            guard let text = self.buffer.getString(at: self.buffer.readerIndex, length: self.buffer.readableBytes),
                let end = text.firstRange(of: "\r\n\r\n")
            else { return }
            guard text.hasPrefix("HTTP/1.1 101") else { fatalError("handshake refused: \(text)") }
            self.buffer.moveReaderIndex(forwardBy: text[..<end.upperBound].utf8.count)
            self.open = true
            for _ in 0..<inflight { self.send(context: context) }
            context.flush()
        }
        // Frames: count payload bytes until a whole message (fin) came back.
        while true {
            guard let first = self.buffer.getInteger(at: self.buffer.readerIndex, as: UInt8.self),
                let second = self.buffer.getInteger(at: self.buffer.readerIndex + 1, as: UInt8.self)
            else { break }
            var header = 2
            var length = Int(second & 0x7F)
            if length == 126 {
                guard let value = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt16.self) else {
                    break
                }
                length = Int(value)
                header = 4
            } else if length == 127 {
                guard let value = self.buffer.getInteger(at: self.buffer.readerIndex + 2, as: UInt64.self) else {
                    break
                }
                length = Int(value)
                header = 10
            }
            guard self.buffer.readableBytes >= header + length else { break }
            self.buffer.moveReaderIndex(forwardBy: header + length)
            let opcode = first & 0x0F
            guard opcode < 0x8 else { continue }  // a ping from the server: not part of the echo
            self.received += length
            if first & 0x80 != 0 {
                precondition(self.received == size, "echo of \(self.received) bytes, sent \(size)")
                self.received = 0
                let sentAt = self.sentAt.popFirst() ?? .now()
                if tally.measuring {
                    tally.count += 1
                    let micros = (NIODeadline.now() - sentAt).nanoseconds / 1000
                    tally.latencies.append(UInt32(clamping: micros))
                    self.latencies.append(UInt32(clamping: micros))
                }
                self.send(context: context)
            }
        }
        self.buffer.discardReadBytes()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush (one system call) for every message the reads of this round sent.
        context.flush()
    }

    private func send(context: ChannelHandlerContext) {
        guard !tally.stopped else { return }
        self.sentAt.append(.now())
        context.write(self.wrapOutboundOut(frame), promise: nil)
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
var channels: [any Channel] = []
let loops = (0..<connections).map { _ in EchoLoop() }
for handler in loops {
    let channel = try await ClientBootstrap(group: loop)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
        }
        .connect(host: "127.0.0.1", port: port).get()
    channels.append(channel)
}
try await Task.sleep(for: .seconds(warmup))
try await loop.submit { tally.measuring = true }.get()
try await Task.sleep(for: .seconds(seconds))
let (count, latencies, perConnection) = try await loop.submit { () -> (Int, [UInt32], [[UInt32]]) in
    tally.measuring = false
    tally.stopped = true
    return (tally.count, tally.latencies, loops.map(\.latencies))
}.get()
for channel in channels { try? await channel.close() }
func percentile(_ sorted: [UInt32], _ p: Double) -> UInt32 {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}
let sorted = latencies.sorted()
print(count / max(seconds, 1), percentile(sorted, 0.5), percentile(sorted, 0.99), percentile(sorted, 0.999))
if let perConnectionFile {
    var lines = ""
    for (index, values) in perConnection.enumerated() {
        let own = values.sorted()
        let localPort = channels[index].localAddress?.port ?? 0
        lines +=
            "\(index) \(localPort) \(own.count) \(percentile(own, 0.5)) \(percentile(own, 0.99)) \(own.last ?? 0)\n"
    }
    FileManager.default.createFile(atPath: perConnectionFile, contents: Data(lines.utf8))
}
try await group.shutdownGracefully()
