import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Testing

/// RFC 6455 conformance over real sockets, following the Autobahn|Testsuite case groups. Where
/// Autobahn says "fail the connection", the server must send a close frame with the right code
/// and close the TCP connection.
@Suite struct ConformanceTests {
    /// Expects the server to fail the connection with `code` (and nothing else after the frames
    /// listed in `before`).
    static func expectFailure(
        _ client: WSTestClient, code: UInt16, echoes: [TestFrame] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let (before, close) = try await client.readUntilClose()
        #expect(before == echoes, sourceLocation: sourceLocation)
        #expect(close?.closeCode == code, "close frame: \(String(describing: close))", sourceLocation: sourceLocation)
        #expect(try await client.serverClosesConnection(), sourceLocation: sourceLocation)
    }

    // MARK: 1. Framing

    @Test(arguments: [0, 1, 125, 126, 127, 128, 65535, 65536, 1 << 20])
    func textAndBinaryEchoAtLengthBoundaries(_ length: Int) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                let text = String(repeating: "*", count: length)
                try await client.sendText(text)
                let echoedText = try #require(try await client.readMessage())
                #expect(echoedText.opcode == 0x1)
                // Compared outside #expect: a failing comparison of megabytes would make the test
                // library diff them for ever.
                let sameText = echoedText.payload == Array(text.utf8)
                #expect(sameText, "text echo of \(echoedText.payload.count) bytes differs")
                #expect(echoedText.frames == max(1, (length + 65535) / 65536), "cut into 64 KiB frames")
                let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                try await client.send(opcode: 0x2, payload: bytes)
                let echoedBinary = try #require(try await client.readMessage())
                #expect(echoedBinary.opcode == 0x2)
                let sameBinary = echoedBinary.payload == bytes
                #expect(sameBinary, "binary echo of \(echoedBinary.payload.count) bytes differs")
            }
        }
    }

    @Test func aFrameArrivingInPiecesIsReassembled() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                var frame = WSTestClient.frame(opcode: 0x2, payload: Array(repeating: 0xAB, count: 65536))
                while let piece = frame.readSlice(length: min(997, frame.readableBytes)), piece.readableBytes > 0 {
                    try await client.connection.send(bytes: piece)
                }
                let echoed = try #require(try await client.readFrame())
                let same = echoed.payload == Array(repeating: 0xAB, count: 65536)
                #expect(same, "echo of \(echoed.payload.count) bytes differs")
            }
        }
    }

    @Test func unmaskedClientFramesFailTheConnection() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x1, payload: Array("hello".utf8), masked: false)
                try await Self.expectFailure(client, code: 1002)
            }
        }
    }

    // MARK: 2. Pings and pongs

    @Test(arguments: [0, 1, 125])
    func pingsAreAnsweredWithTheirPayload(_ length: Int) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
                try await client.send(opcode: 0x9, payload: payload)
                let pong = try #require(try await client.readFrame())
                #expect(pong.opcode == 0xA)
                #expect(pong.payload == payload)
            }
        }
    }

    @Test func tenPingsGetTenPongsAndUnsolicitedPongsAreIgnored() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0xA, payload: Array("unsolicited".utf8))
                try await client.send(frames: (0..<10).map { WSTestClient.frame(opcode: 0x9, payload: [UInt8($0)]) })
                for index in 0..<10 {
                    let pong = try #require(try await client.readFrame())
                    #expect(pong.opcode == 0xA && pong.payload == [UInt8(index)])
                }
                try await client.sendText("still open")
                #expect(try await client.readFrame()?.text == "still open")
            }
        }
    }

    @Test func aPingOver125BytesFailsTheConnection() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x9, payload: Array(repeating: 1, count: 126))
                try await Self.expectFailure(client, code: 1002)
            }
        }
    }

    // MARK: 3. Reserved bits

    @Test(arguments: [(UInt8(0x1), UInt8(1)), (0x1, 2), (0x1, 4), (0x2, 3), (0x9, 5), (0x1, 7)])
    func reservedBitsFailTheConnectionAfterEarlierEchoes(_ opcode: UInt8, _ rsv: UInt8) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x1, payload: Array("first".utf8)),
                    WSTestClient.frame(opcode: opcode, payload: Array("bad".utf8), rsv: rsv),
                    WSTestClient.frame(opcode: 0x9, payload: []),
                ])
                try await Self.expectFailure(
                    client, code: 1002,
                    echoes: [TestFrame(fin: true, rsv: 0, opcode: 0x1, payload: Array("first".utf8))])
            }
        }
    }

    // MARK: 4. Opcodes

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodesFailTheConnection(_ opcode: UInt8) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x1, payload: Array("first".utf8)),
                    WSTestClient.frame(opcode: opcode, payload: Array("x".utf8)),
                ])
                try await Self.expectFailure(
                    client, code: 1002,
                    echoes: [TestFrame(fin: true, rsv: 0, opcode: 0x1, payload: Array("first".utf8))])
            }
        }
    }

    // MARK: 5. Fragmentation

    @Test func fragmentsWithInterleavedPingsMakeOneMessage() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x1, payload: Array("frag".utf8), fin: false),
                    WSTestClient.frame(opcode: 0x9, payload: Array("p1".utf8)),
                    WSTestClient.frame(opcode: 0x0, payload: Array("men".utf8), fin: false),
                    WSTestClient.frame(opcode: 0xA, payload: []),
                    WSTestClient.frame(opcode: 0x9, payload: Array("p2".utf8)),
                    WSTestClient.frame(opcode: 0x0, payload: Array("ted".utf8), fin: true),
                ])
                #expect(try await client.readFrame()?.payload == Array("p1".utf8))
                #expect(try await client.readFrame()?.payload == Array("p2".utf8))
                let message = try #require(try await client.readFrame())
                #expect(message.opcode == 0x1 && message.fin && message.text == "fragmented")
            }
        }
    }

    @Test func oneByteFragmentsOfABinaryMessage() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                let bytes = Array(0..<200).map { UInt8($0) }
                var frames: [ByteBuffer] = []
                for (index, byte) in bytes.enumerated() {
                    frames.append(
                        WSTestClient.frame(
                            opcode: index == 0 ? 0x2 : 0x0, payload: [byte], fin: index == bytes.count - 1))
                }
                try await client.send(frames: frames)
                #expect(try await client.readFrame()?.payload == bytes)
            }
        }
    }

    @Test(arguments: [
        ("fragmented ping", [WSTestClient.frame(opcode: 0x9, payload: [1], fin: false)]),
        ("continuation first", [WSTestClient.frame(opcode: 0x0, payload: [1], fin: true)]),
        (
            "text inside a fragmented text",
            [
                WSTestClient.frame(opcode: 0x1, payload: [0x61], fin: false),
                WSTestClient.frame(opcode: 0x1, payload: [0x62], fin: true),
            ]
        ),
        (
            "fragmented close",
            [WSTestClient.frame(opcode: 0x8, payload: [0x03, 0xE8], fin: false)]
        ),
    ])
    func fragmentationErrorsFailTheConnection(_ label: String, _ frames: [ByteBuffer]) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(frames: frames)
                try await Self.expectFailure(client, code: 1002)
            }
        }
    }

    // MARK: 6. UTF-8

    @Test(arguments: ["κόσμε", "Hello-µ@ßöäüàá-UTF-8!!", "\u{10FFFF}\u{FFFD}\u{0}", "😀 emoji"])
    func validUTF8IsEchoedEvenSplitAcrossFragmentsByteByByte(_ text: String) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                let bytes = Array(text.utf8)
                var frames: [ByteBuffer] = []
                for (index, byte) in bytes.enumerated() {
                    frames.append(
                        WSTestClient.frame(
                            opcode: index == 0 ? 0x1 : 0x0, payload: [byte], fin: index == bytes.count - 1))
                }
                try await client.send(frames: frames)
                #expect(try await client.readFrame()?.text == text)
            }
        }
    }

    @Test(
        arguments: [
            // "κόσμε" then a surrogate (ED A0 80)
            [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64],
            [0xC0, 0xAF],  // overlong "/"
            [0xE0, 0x80, 0xAF],  // overlong
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xFE],
            [0x80],  // lone continuation
            [0x61, 0xCE],  // ends inside a character
        ] as [[UInt8]])
    func invalidUTF8FailsWith1007(_ bytes: [UInt8]) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x1, payload: bytes)
                try await Self.expectFailure(client, code: 1007)
            }
        }
    }

    /// Autobahn 6.4.x: the first fragment already holds an invalid sequence; the server must
    /// fail right away, without waiting for a final fragment that never comes.
    @Test func invalidUTF8FailsFastBeforeTheMessageEnds() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x1, payload: [0xCE, 0xBA, 0xF4, 0x90, 0x80, 0x80], fin: false)
                try await Self.expectFailure(client, code: 1007)
            }
        }
    }

    // MARK: 7. Close

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    func validCloseCodesAreEchoed(_ code: UInt16) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array("bye".utf8))
                let close = try #require(try await client.readFrame())
                #expect(close.opcode == 0x8 && close.closeCode == code)
                #expect(try await client.serverClosesConnection())
            }
        }
    }

    @Test(arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCloseCodesFailWith1002(_ code: UInt16) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
                try await Self.expectFailure(client, code: 1002)
            }
        }
    }

    @Test func emptyCloseIsAnsweredAndOneByteCloseFails() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8)
                let close = try #require(try await client.readFrame())
                #expect(close.opcode == 0x8)
                #expect(close.closeCode == nil || close.closeCode == 1000)
                #expect(try await client.serverClosesConnection())
            }
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8, payload: [0x03])
                try await Self.expectFailure(client, code: 1002)
            }
        }
    }

    @Test func closeReasonsMustBeUTF8AndMayBe123Bytes() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8, payload: [0x03, 0xE8] + Array(repeating: 0x2A, count: 123))
                #expect(try await client.readFrame()?.closeCode == 1000)
            }
            try await WSTestClient.with(port: port) { client in
                try await client.send(opcode: 0x8, payload: [0x03, 0xE8, 0xCE, 0xBA, 0xED, 0xA0, 0x80])
                try await Self.expectFailure(client, code: 1007)
            }
        }
    }

    @Test func nothingIsEchoedAfterTheClose() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x8, payload: [0x03, 0xE8]),
                    WSTestClient.frame(opcode: 0x1, payload: Array("late".utf8)),
                    WSTestClient.frame(opcode: 0x9, payload: []),
                ])
                let (before, close) = try await client.readUntilClose()
                #expect(before.isEmpty)
                #expect(close?.closeCode == 1000)
                #expect(try await client.serverClosesConnection())
            }
        }
    }

    // MARK: 9. Limits and large messages

    @Test func largeMessagesAreEchoedWhole() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                let bytes = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                var frames: [ByteBuffer] = []
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + (1 << 20), bytes.count)
                    frames.append(
                        WSTestClient.frame(
                            opcode: offset == 0 ? 0x2 : 0x0, payload: Array(bytes[offset..<end]),
                            fin: end == bytes.count))
                    offset = end
                }
                try await client.send(frames: frames)
                // The server cuts its echo into 64 KiB frames.
                var received: [UInt8] = []
                var frameCount = 0
                while true {
                    let frame = try #require(try await client.readFrame())
                    #expect(frame.opcode == (frameCount == 0 ? 0x2 : 0x0))
                    #expect(frame.payload.count <= 64 << 10)
                    received += frame.payload
                    frameCount += 1
                    if frame.fin { break }
                }
                #expect(frameCount == 64)
                let same = received == bytes
                #expect(same, "echo of \(received.count) bytes differs")
            }
        }
    }

    @Test func aFrameOverTheLimitFailsWith1009BeforeItsPayloadArrives() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/limited") { client in
                // Only the header of a 10 MB frame: the server must not wait for the payload.
                var header = ByteBuffer()
                header.writeInteger(UInt8(0x82))
                header.writeInteger(UInt8(0x80 | 127))
                header.writeInteger(UInt64(10_000_000))
                header.writeBytes([1, 2, 3, 4])
                try await client.connection.send(bytes: header)
                try await Self.expectFailure(client, code: 1009)
            }
        }
    }

    @Test func aMessageOverTheLimitFailsWith1009() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/limited") { client in
                try await client.send(frames: [
                    WSTestClient.frame(opcode: 0x2, payload: Array(repeating: 1, count: 900), fin: false),
                    WSTestClient.frame(opcode: 0x0, payload: Array(repeating: 1, count: 900), fin: false),
                    WSTestClient.frame(opcode: 0x0, payload: Array(repeating: 1, count: 900), fin: true),
                ])
                try await Self.expectFailure(client, code: 1009)
            }
        }
    }
}
