import Foundation
import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataCache
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

let quietLogger: Logger = {
    var logger = Logger(label: "strata.test.cache")
    logger.logLevel = .critical
    return logger
}()

/// Runs a scripted origin on a live server and `CachingProxyExample` in front of it.
func withCachingProxy<Result: Sendable>(
    arguments: [String] = [], origin script: @escaping ScriptedOrigin.Script,
    _ body: @Sendable (_ proxy: ExampleProcess, _ origin: ScriptedOrigin) async throws -> Result
) async throws -> Result {
    let origin = ScriptedOrigin(script)
    return try await withLiveServer(responder: origin, logger: quietLogger) { port in
        let proxy = try await ExampleProcess(
            "CachingProxyExample", arguments: ["--origin", "http://127.0.0.1:\(port)"] + arguments)
        defer { proxy.stop() }
        return try await body(proxy, origin)
    }
}

/// `curl -s -D -` of `path`: the head's lines, then the body.
func curl(_ port: Int, _ path: String, _ arguments: [String] = []) async throws -> (head: [String], body: String) {
    let output = try await ExternalProcess.run(
        try ExternalProcess.curl(), ["-s", "-D", "-", "http://127.0.0.1:\(port)\(path)"] + arguments)
    let parts = output.stdout.components(separatedBy: "\r\n\r\n")
    return (parts[0].components(separatedBy: "\r\n"), parts.dropFirst().joined(separator: "\r\n\r\n"))
}

extension Array where Element == String {
    /// The values of the header lines named `name`.
    func values(_ name: String) -> [String] {
        self.compactMap { line in
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else {
                return nil
            }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
}

/// The cache over real sockets: curl and httpx against `CachingProxyExample` (StrataCache in
/// front of StrataReverseProxy) against a scripted origin.
@Suite struct CachingProxyTests {
    @Test func aMissIsStoredAndAHitIsAnsweredWithoutTheOrigin() async throws {
        try await withCachingProxy(origin: { _, _ in
            var fields: HTTPFields = [.cacheControl: "public, max-age=60"]
            fields.append(HTTPField(name: .setCookie, value: "a=1"))
            fields.append(HTTPField(name: .setCookie, value: "b=2"))
            return reply(.ok, fields, body: "cookie page")
        }) { proxy, origin in
            let miss = try await curl(proxy.port, "/page")
            #expect(miss.body == "cookie page")
            // Both Set-Cookie lines reach the requester, and the response is not stored.
            #expect(miss.head.values("set-cookie") == ["a=1", "b=2"])
            _ = try await curl(proxy.port, "/page")
            #expect(origin.count == 2)
        }
        try await withCachingProxy(origin: { _, _ in reply(.ok, [.cacheControl: "max-age=60"], body: "shared") }) {
            proxy, origin in
            _ = try await curl(proxy.port, "/page")
            let hit = try await curl(proxy.port, "/page")
            #expect(hit.body == "shared")
            #expect(hit.head.values("cache-status").last?.hasPrefix("Strata; hit; ttl=") == true)
            #expect(hit.head.values("age").count == 1)
            #expect(origin.count == 1)
        }
    }

    @Test func aHundredConcurrentColdRequestsMakeOneOriginRequest() async throws {
        try await withCachingProxy(origin: { _, _ in
            // Slow enough that most of the hundred arrive while the first is at the origin;
            // those that come later are hits. Either way the origin is asked once.
            try await Task.sleep(for: .milliseconds(500))
            return reply(.ok, [.cacheControl: "max-age=60"], body: "cold")
        }) { proxy, origin in
            let result = try await concurrentRequests(ports: [proxy.port], path: "/cold", count: 100)
            #expect(result.statuses == [200: 100])
            #expect(origin.count == 1)
        }
    }

    @Test func withTheOriginDownStaleIfErrorAnswers() async throws {
        let origin = ScriptedOrigin { _, _ in
            reply(.ok, [.cacheControl: "max-age=0, stale-if-error=600", .eTag: "\"1\""], body: "kept")
        }
        let stopped = try await withLiveServer(responder: origin, logger: quietLogger) { port in
            let proxy = try await ExampleProcess(
                "CachingProxyExample", arguments: ["--origin", "http://127.0.0.1:\(port)"])
            #expect(try await curl(proxy.port, "/").body == "kept")
            return proxy
        }
        let proxy = stopped
        defer { proxy.stop() }
        // The origin was stopped with the response in the store: it still answers, stale.
        let answer = try await curl(proxy.port, "/")
        #expect(answer.body == "kept")
        #expect(origin.count == 1)
        #expect(answer.head.values("cache-status").last?.contains("fwd=stale; fwd-status=502") == true)
    }

    @Test func staleWhileRevalidateRevalidatesExactlyOnceInTheBackground() async throws {
        let gate = Gate()
        try await withCachingProxy(origin: { _, number in
            if number > 1 { await gate.wait() }
            return reply(.ok, [.cacheControl: "max-age=0, stale-while-revalidate=600"], body: "v\(number)")
        }) { proxy, origin in
            _ = try await curl(proxy.port, "/")
            for _ in 0..<10 {
                let stale = try await curl(proxy.port, "/")
                #expect(stale.body == "v1")
                #expect(stale.head.values("cache-status").last?.contains("detail=stale-while-revalidate") == true)
            }
            #expect(await eventually { origin.count == 2 })
            gate.open()
            #expect(try await eventually { try await curl(proxy.port, "/").body == "v2" })
        }
    }

    @Test func aHundredMiBResponseStreamsThroughWithBoundedMemoryAndSmallOnesAreStored() async throws {
        let mebibyte = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
        try await withCachingProxy(origin: { request, _ in
            let size = request.path == "/big" ? 100 : 4
            return ServerResponse(
                status: .ok, headerFields: [.cacheControl: "max-age=60"],
                body: ResponseBody { writer in for _ in 0..<size { try await writer.write(mebibyte) } })
        }) { proxy, origin in
            let curl = try ExternalProcess.curl()
            let url = "http://127.0.0.1:\(proxy.port)"
            let big = try await ExternalProcess.run(
                curl, ["-s", "-o", "/dev/null", "-w", "%{size_download}", url + "/big"])
            #expect(big.stdout == "\(100 << 20)")
            #expect(try proxy.memory().peak < 64 << 20)
            _ = try await ExternalProcess.run(curl, ["-s", "-o", "/dev/null", url + "/big"])
            #expect(origin.count == 2)
            for _ in 0..<2 {
                let small = try await ExternalProcess.run(
                    curl, ["-s", "-o", "/dev/null", "-w", "%{size_download}", url + "/small"])
                #expect(small.stdout == "\(4 << 20)")
            }
            #expect(origin.count == 3)
        }
    }

    @Test func anOriginThatFailsMidBodyLeavesNoEntry() async throws {
        try await withCachingProxy(origin: { _, number in
            ServerResponse(
                status: .ok, headerFields: [.cacheControl: "max-age=60"],
                body: ResponseBody(contentLength: 200_000) { writer in
                    try await writer.write(ByteBuffer(repeating: 1, count: 100_000))
                    if number == 1 { throw CacheTestError.originFailed }
                    try await writer.write(ByteBuffer(repeating: 1, count: 100_000))
                })
        }) { proxy, origin in
            let curl = try ExternalProcess.curl()
            let url = "http://127.0.0.1:\(proxy.port)/"
            let broken = try await ExternalProcess.run(curl, ["-s", "-o", "/dev/null", url])
            #expect(broken.status != 0)
            let whole = try await ExternalProcess.run(curl, ["-s", "-o", "/dev/null", "-w", "%{size_download}", url])
            #expect(whole.stdout == "200000")
            #expect(origin.count == 2)
        }
    }

    @Test func thePurgeFlagRemovesAURLForLoopbackClients() async throws {
        try await withCachingProxy(
            arguments: ["--purge"], origin: { _, _ in reply(.ok, [.cacheControl: "max-age=60"]) }
        ) {
            proxy, origin in
            _ = try await curl(proxy.port, "/p")
            let purged = try await curl(proxy.port, "/p", ["-X", "PURGE"])
            #expect(purged.body == "purged\n")
            _ = try await curl(proxy.port, "/p")
            #expect(origin.count == 2)
        }
    }
}
