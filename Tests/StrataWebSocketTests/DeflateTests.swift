import CompressNIO
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

@testable import StrataWebSocket

/// permessage-deflate (RFC 7692), Autobahn groups 12 and 13 in spirit: negotiation, both
/// directions compressed, context takeover, limits on inflated bytes.
@Suite struct DeflateTests {
    @Test(arguments: [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10"),
        ("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
        ("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=\"12\"", "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
        ("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
    ])
    func offersTheServerAccepts(_ offer: String, _ response: String) {
        let agreement = DeflateAgreement.negotiate(offers: [offer], configuration: PerMessageDeflate())
        #expect(agreement?.responseHeader == response)
    }

    @Test(arguments: [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown_parameter",
        "x-webkit-deflate-frame",
    ])
    func offersTheServerDeclines(_ offer: String) {
        #expect(DeflateAgreement.negotiate(offers: [offer], configuration: PerMessageDeflate()) == nil)
    }

    @Test func theServersOwnLimitsAreAnnounced() {
        var configuration = PerMessageDeflate()
        configuration.serverNoContextTakeover = true
        configuration.clientNoContextTakeover = true
        configuration.serverMaxWindowBits = 11
        let agreement = DeflateAgreement.negotiate(offers: ["permessage-deflate"], configuration: configuration)
        #expect(
            agreement?.responseHeader
                == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11"
        )
    }

    /// A client-side compressor: raw deflate, sync flush per message, tail removed.
    final class ClientDeflater {
        let zlib: ZlibCompressor
        init() throws {
            self.zlib = try ZlibCompressor(algorithm: .deflate)
        }
        func compress(_ bytes: [UInt8]) throws -> [UInt8] {
            var input = ByteBuffer(bytes: bytes)
            var output = ByteBuffer()
            output.reserveCapacity(self.zlib.maxSize(from: input) + 16)
            try self.zlib.deflate(from: &input, to: &output, flush: .sync)
            let all = output.readBytes(length: output.readableBytes) ?? []
            return Array(all.dropLast(4))
        }
    }

    static func inflate(_ messages: [[UInt8]]) throws -> [[UInt8]] {
        let zlib = try ZlibDecompressor(algorithm: .deflate)
        return try messages.map { message in
            var input = ByteBuffer(bytes: message + [0, 0, 0xFF, 0xFF])
            var output = ByteBuffer()
            output.reserveCapacity(1 << 22)
            do {
                try zlib.inflate(from: &input, to: &output)
            } catch let error as CompressNIOError where error == .inputBufferOverflow {}
            return output.readBytes(length: output.readableBytes) ?? []
        }
    }

    @Test func messagesAreCompressedBothWaysWithContextTakeover() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/deflate", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                #expect(client.handshakeResponse.contains("Sec-WebSocket-Extensions: permessage-deflate"))
                let deflater = try ClientDeflater()
                let text = String(repeating: "strata websocket deflate ", count: 40)
                var echoes: [[UInt8]] = []
                for _ in 0..<3 {
                    // Compressed by the client, fragmented in two, with one context for all three.
                    let compressed = try deflater.compress(Array(text.utf8))
                    let half = compressed.count / 2
                    try await client.send(frames: [
                        WSTestClient.frame(opcode: 0x1, payload: Array(compressed[..<half]), fin: false, rsv: 4),
                        WSTestClient.frame(opcode: 0x0, payload: Array(compressed[half...]), fin: true),
                    ])
                    let echo = try #require(try await client.readFrame())
                    #expect(echo.rsv == 4, "the echo is compressed")
                    echoes.append(echo.payload)
                }
                #expect(echoes[1].count < echoes[0].count / 2, "the second message refers to the first")
                #expect(try Self.inflate(echoes).allSatisfy { $0 == Array(text.utf8) })
                // Small messages go uncompressed; uncompressed messages from the client are fine.
                try await client.sendText("tiny")
                let tiny = try #require(try await client.readFrame())
                #expect(tiny.rsv == 0 && tiny.text == "tiny")
            }
        }
    }

    @Test func sensitiveMessagesAreNeverCompressed() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/sensitive", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                let text = String(repeating: "secret=hunter2 ", count: 40)
                try await client.sendText(text)
                let echo = try #require(try await client.readFrame())
                #expect(echo.rsv == 0 && echo.text == text)
            }
        }
    }

    @Test func serverNoContextTakeoverResetsBetweenMessages() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/deflate",
                headers: ["Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"]
            ) { client in
                #expect(client.handshakeResponse.contains("server_no_context_takeover"))
                let text = String(repeating: "no takeover ", count: 40)
                try await client.sendText(text)
                try await client.sendText(text)
                let first = try #require(try await client.readFrame())
                let second = try #require(try await client.readFrame())
                #expect(first.payload == second.payload, "each message compressed from a fresh state")
                #expect(try Self.inflate([first.payload]) == [Array(text.utf8)])
            }
        }
    }

    @Test func aCompressedBombIsRefusedWith1009() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/deflate-limited", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                // 16 MiB of zeros compress to about 16 KiB; the limit is 2000 inflated bytes, and
                // the frame is under the 1000-byte frame limit only because it is cut in pieces.
                let compressed = try ClientDeflater().compress([UInt8](repeating: 0, count: 16 << 20))
                var frames: [ByteBuffer] = []
                var offset = 0
                while offset < compressed.count {
                    let end = min(offset + 900, compressed.count)
                    frames.append(
                        WSTestClient.frame(
                            opcode: offset == 0 ? 0x2 : 0x0, payload: Array(compressed[offset..<end]),
                            fin: end == compressed.count, rsv: offset == 0 ? 4 : 0))
                    offset = end
                }
                try await client.send(frames: frames)
                try await ConformanceTests.expectFailure(client, code: 1009)
            }
        }
    }

    @Test func rsv1OnAContinuationAndCorruptDataFailTheConnection() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/deflate", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x1, payload: Array("a".utf8), fin: false),
                    WSTestClient.frame(opcode: 0x0, payload: Array("b".utf8), fin: true, rsv: 4),
                ])
                try await ConformanceTests.expectFailure(client, code: 1002)
            }
            try await WSTestClient.with(
                port: port, path: "/deflate", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                try await client.send(opcode: 0x2, payload: [0xFF, 0xFF, 0xFF, 0xFF, 0x00], rsv: 4)
                try await ConformanceTests.expectFailure(client, code: 1007)
            }
        }
    }

    @Test func invalidUTF8InsideACompressedTextFailsWith1007() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(
                port: port, path: "/deflate", headers: ["Sec-WebSocket-Extensions: permessage-deflate"]
            ) { client in
                let compressed = try ClientDeflater().compress(Array("valid then ".utf8) + [0xED, 0xA0, 0x80])
                try await client.send(opcode: 0x1, payload: compressed, rsv: 4)
                try await ConformanceTests.expectFailure(client, code: 1007)
            }
        }
    }
}
