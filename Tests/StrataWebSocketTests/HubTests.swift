import Foundation
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Testing

@Suite struct HubTests {
    /// The body of a plain GET.
    static func get(_ path: String, port: Int) async throws -> String {
        let text = try await RawHTTPClient.exchange(
            "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port)
        return parseResponses(text).first?.body ?? ""
    }

    /// Polls `path` until it answers `expected` or ten seconds pass.
    static func waitFor(_ path: String, toBe expected: String, port: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await Self.get(path, port: port) == expected { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func aPublishReachesEveryMemberAndLeavingUnsubscribes() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/chat/close") { alice in
                try await WSTestClient.with(port: port, path: "/chat/close") { bob in
                    #expect(try await Self.waitFor("/count/close", toBe: "2", port: port))
                    try await alice.sendText("hello from alice")
                    #expect(try await alice.readMessage()?.payload == Array("hello from alice".utf8))
                    #expect(try await bob.readMessage()?.payload == Array("hello from alice".utf8))
                    #expect(try await Self.get("/publish/close/3/20", port: port) == "6")
                    for client in [alice, bob] {
                        for index in 0..<3 {
                            let text = String(
                                decoding: try #require(try await client.readMessage()).payload, as: UTF8.self)
                            #expect(text.hasPrefix("\(index) "))
                        }
                    }
                    try await bob.send(opcode: 0x8, payload: [0x03, 0xE8])
                    _ = try await bob.readUntilClose()
                }
                #expect(try await Self.waitFor("/count/close", toBe: "1", port: port), "bob left the room")
            }
            #expect(try await Self.waitFor("/count/close", toBe: "0", port: port))
        }
    }

    @Test func aSlowMemberDoesNotHoldOthersUpAndIsClosedWith1013() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/chat/close", pausing: true) { slow in
                try await WSTestClient.with(port: port, path: "/chat/close") { fast in
                    #expect(try await Self.waitFor("/count/close", toBe: "2", port: port))
                    // The fast member publishes 400 messages of 32 KiB (12.5 MiB), each after the
                    // previous one came back to it; the slow member reads nothing meanwhile.
                    let filler = String(repeating: "x", count: 32 << 10)
                    for index in 0..<400 {
                        try await fast.sendText("\(index) \(filler)")
                        let echo = try #require(try await fast.readMessage(), "message \(index)")
                        #expect(String(decoding: echo.payload.prefix(12), as: UTF8.self).hasPrefix("\(index) "))
                    }
                }
                let (before, close) = try await slow.readUntilClose()
                #expect(close?.closeCode == 1013)
                #expect(before.count < 400)
            }
        }
    }

    @Test func dropOldestKeepsTheLatestMessagesForASlowMember() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/chat/drop", pausing: true) { slow in
                #expect(try await Self.waitFor("/count/drop", toBe: "1", port: port))
                _ = try await Self.get("/publish/drop/400/32768", port: port)
                var numbers: [Int] = []
                while numbers.last != 399, let message = try await slow.readMessage(timeout: .seconds(10)) {
                    let text = String(decoding: message.payload.prefix(12), as: UTF8.self)
                    numbers.append(Int(text.split(separator: " ")[0]) ?? -1)
                }
                #expect(numbers.last == 399, "the newest message arrives")
                #expect(numbers.count < 400, "older ones were dropped")
                #expect(numbers == numbers.sorted(), "in order")
            }
        }
    }

    @Test func dropNewestKeepsTheOldestMessagesForASlowMember() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port, path: "/chat/newest", pausing: true) { slow in
                #expect(try await Self.waitFor("/count/newest", toBe: "1", port: port))
                // With one member, the publish reports how many messages were queued for it.
                let queued = try #require(Int(try await Self.get("/publish/newest/400/32768", port: port)))
                var numbers: [Int] = []
                for _ in 0..<queued {
                    let message = try #require(try await slow.readMessage(timeout: .seconds(10)))
                    let text = String(decoding: message.payload.prefix(12), as: UTF8.self)
                    numbers.append(Int(text.split(separator: " ")[0]) ?? -1)
                }
                #expect(numbers.first == 0, "the oldest message stays")
                #expect(numbers.count < 400, "newer ones were dropped")
                // The outbox (256 KiB) takes the first eight 32 KiB messages whatever the timing;
                // later ones are dropped or taken as the socket drains.
                #expect(Array(numbers.prefix(8)) == Array(0..<8), "the oldest messages arrive")
                #expect(numbers == numbers.sorted(), "in order")
            }
        }
    }
}
