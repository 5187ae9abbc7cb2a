import HTTPTypes
import NIOCore
import Strata
import StrataServer
import StrataTestSupport
import StrataTesting
import StrataWebSocket
import Testing

@Suite struct HandshakeTests {
    static let valid = [
        "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]

    static func request(_ path: String = "/echo", replacing: [String: String?] = [:], adding: [String] = []) -> String {
        var lines = ["GET \(path) HTTP/1.1", "Host: 127.0.0.1"]
        for header in Self.valid {
            let name = String(header.prefix { $0 != ":" })
            if let replacement = replacing[name] {
                if let replacement { lines.append("\(name): \(replacement)") }
            } else {
                lines.append(header)
            }
        }
        return (lines + adding).joined(separator: "\r\n") + "\r\n\r\n"
    }

    @Test func theAcceptValueIsRFC6455s() async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            try await WSTestClient.with(port: port) { client in
                // The RFC's own example key and accept value (RFC 6455 §1.3).
                #expect(client.handshakeResponse.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
                #expect(client.handshakeResponse.lowercased().contains("upgrade: websocket"))
                #expect(!client.handshakeResponse.lowercased().contains("sec-websocket-protocol"))
            }
        }
    }

    @Test(
        arguments: [
            ("no Upgrade", ["Upgrade": nil], [], 426),
            ("Upgrade is not websocket", ["Upgrade": "h2c"], [], 426),
            ("Connection lacks upgrade", ["Connection": "keep-alive"], [], 400),
            ("version 8", ["Sec-WebSocket-Version": "8"], [], 426),
            ("no key", ["Sec-WebSocket-Key": nil], [], 400),
            ("short key", ["Sec-WebSocket-Key": "c2hvcnQ="], [], 400),
            ("key not base64", ["Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="], [], 400),
            ("cross-site origin", [:], ["Origin: https://evil.example"], 403),
            ("null origin", [:], ["Origin: null"], 403),
            ("same host, other port", [:], ["Origin: http://127.0.0.1:1"], 403),
        ] as [(String, [String: String?], [String], Int)])
    func refusedHandshakesGetTheirStatusAndClose(
        _ label: String, _ replacing: [String: String?], _ adding: [String], _ status: Int
    ) async throws {
        try await withLiveServer(responder: try webSocketRouter()) { port in
            let text = try await RawHTTPClient.exchange(Self.request(replacing: replacing, adding: adding), port: port)
            let response = try #require(parseResponses(text).first, "\(label): \(text)")
            #expect(response.status == status, "\(label)")
            #expect(response.header("connection")?.lowercased().contains("close") == true, "\(label)")
            if status == 426 {
                #expect(response.header("sec-websocket-version") == "13", "\(label)")
                #expect(response.header("upgrade") == "websocket", "\(label)")
            }
        }
    }

    @Test func sameOriginAndAllowListedOriginsMayConnect() async throws {
        let router = try webSocketRouter {
            $0.originPolicy = try .allowing(["https://*.example.com"])
        }
        try await withLiveServer(responder: router) { port in
            for origin in ["http://127.0.0.1:\(port)", "https://app.example.com"] {
                try await WSTestClient.with(port: port, headers: ["Origin: \(origin)"]) { client in
                    try await client.sendText("hi")
                    #expect(try await client.readFrame()?.text == "hi", "\(origin)")
                }
            }
            let refused = try await RawHTTPClient.exchange(
                Self.request(adding: ["Origin: https://example.com.evil.net"]), port: port)
            #expect(parseResponses(refused).first?.status == 403)
        }
        let open = try webSocketRouter { $0.originPolicy = .dangerouslyAllowAnyOrigin }
        try await withLiveServer(responder: open) { port in
            try await WSTestClient.with(port: port, headers: ["Origin: https://anyone.example"]) { client in
                try await client.sendText("hi")
                #expect(try await client.readFrame()?.text == "hi")
            }
        }
    }

    @Test func theServersPreferredOfferedSubprotocolIsChosen() async throws {
        let router = try webSocketRouter { $0.subprotocols = ["chat.v2", "chat.v1"] }
        try await withLiveServer(responder: router) { port in
            try await WSTestClient.with(port: port, headers: ["Sec-WebSocket-Protocol: chat.v1, chat.v2"]) { client in
                #expect(client.handshakeResponse.contains("Sec-WebSocket-Protocol: chat.v2"))
            }
            try await WSTestClient.with(port: port, headers: ["Sec-WebSocket-Protocol: other"]) { client in
                #expect(!client.handshakeResponse.contains("Sec-WebSocket-Protocol"))
            }
        }
    }

    @Test func configurationsAreValidated() {
        var configuration = WebSocketConfiguration()
        configuration.maxFrameSize = 10
        configuration.maxMessageSize = 0
        configuration.pongTimeout = .zero
        configuration.subprotocols = ["has space"]
        #expect {
            try WebSocketEndpoint(configuration: configuration)
        } throws: { error in
            (error as? WebSocketConfigurationError)?.problems.count == 4
        }
        #expect(throws: OriginPatternError.self) { try WebSocketOriginPolicy.allowing(["not an origin"]) }
    }
}
