import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Strata
import StrataCompression
import StrataServer
import UnixSignals

/// The compression example: a big text page, a server-sent event stream, and an upload that
/// accepts gzip bodies.
///
///     swift run CompressionExample --port 8080
///     curl --compressed -v http://127.0.0.1:8080/big -o /dev/null
///     curl --compressed -N http://127.0.0.1:8080/events
///     printf 'hello' | gzip | curl --data-binary @- -H 'Content-Encoding: gzip' http://127.0.0.1:8080/upload
///
/// Built with the `Libdeflate` trait (`swift run --traits Libdeflate CompressionExample`), `/big`
/// is compressed by libdeflate; `--libdeflate-level N` (1...12) overrides the level mapped from
/// zlib's 6. `--page FILE` serves that file's bytes as `/big` (the benchmarks compare bodies).
@main
struct CompressionExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        func value(_ flag: String) -> String? {
            guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
            return arguments[index + 1]
        }
        let port =
            value("--port").flatMap { Int($0) }
            ?? ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 8080
        let host = value("--host") ?? "127.0.0.1"
        let logger = Logger(label: "compression-example")
        var page = bigPage
        if let path = value("--page") {
            guard let data = FileManager.default.contents(atPath: path) else {
                logger.critical("cannot read --page file", metadata: ["path": "\(path)"])
                throw ExampleArgumentError(description: "cannot read \(path)")
            }
            page = ByteBuffer(bytes: data)
        }
        let libdeflateLevel = value("--libdeflate-level").flatMap { Int($0) }
        #if !Libdeflate
        if libdeflateLevel != nil {
            logger.warning("--libdeflate-level has no effect: this build has no Libdeflate trait")
        }
        #endif
        let server = HTTPServer(
            responder: try buildResponder(libdeflateLevel: libdeflateLevel, page: page),
            configuration: try HTTPServerConfiguration(host: host, port: port),
            logger: logger
        )
        try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// A command-line argument the example cannot use.
struct ExampleArgumentError: Error, CustomStringConvertible {
    let description: String
}

/// A deterministic ~100 KiB HTML page with JSON-like rows: the body `/big` serves.
let bigPage: ByteBuffer = {
    var text = "<!doctype html><html><head><title>Strata compression</title></head><body><pre>\n"
    var row = 0
    while text.utf8.count < 100 * 1024 {
        text +=
            "{\"id\": \(row), \"name\": \"item-\(row % 97)\", \"price\": \(row % 1000).\(row % 100), \"tags\": [\"alpha\", \"beta\"]}\n"
        row += 1
    }
    text += "</pre></body></html>\n"
    return ByteBuffer(string: text)
}()

/// The example's routes behind request decompression and response compression; the benchmark
/// scripts serve `/big` from it.
func buildResponder(
    interval: Duration = .seconds(1), libdeflateLevel: Int? = nil, page: ByteBuffer = bigPage
) throws -> some HTTPResponder<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/big") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "text/html; charset=utf-8"], body: .init(buffer: page))
    }
    router.get("/events") { _, _ in
        ServerResponse(
            status: .ok,
            headerFields: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                for event in 1...5 {
                    if event > 1 { try await Task.sleep(for: interval) }
                    try await writer.write(ByteBuffer(string: "id: \(event)\ndata: {\"event\": \(event)}\n\n"))
                }
            }
        )
    }
    router.post("/upload") { request, _ in
        var inflated = 0
        for try await chunk in request.body { inflated += chunk.readableBytes }
        return ServerResponse(
            status: .ok, headerFields: [.contentType: "text/plain"], body: .init(string: "\(inflated)\n"))
    }
    var configuration = CompressionConfiguration()
    configuration.libdeflateLevel = libdeflateLevel
    let compression = try ResponseCompressionMiddleware<BasicContext>(configuration: configuration)
    let decompression = try RequestDecompressionMiddleware<BasicContext>(maxInflatedSize: 64 << 20)
    return MiddlewareStack(BasicContext.self) {
        compression
        decompression
    }.wrapping(router)
}
