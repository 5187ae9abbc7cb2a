import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Strata
import StrataServer
import Synchronization

// The ceiling of any reverse proxy whose server half is StrataServer, for
// `scripts/bench-proxy.sh`: a responder that forwards `GET`s with the least client work that
// still is a keep-alive HTTP/1.1 client. Per event loop, a stack of idle upstream connections
// (one lock, as StrataReverseProxy's pool); a request head of two lines; a handler that finds
// the response's `Content-Length` and hands the body over in one future. No header parsing or
// rewriting, no health, no timeouts, no metrics: everything StrataReverseProxy does on top is
// what separates it from this figure, and the server half is what separates this from nginx.
//
//   ProxyCeiling --port 18197 --upstream-port 18190

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let port = option("--port").flatMap(Int.init) ?? 18197
let upstreamPort = option("--upstream-port").flatMap(Int.init) ?? 18190

struct CeilingError: Error {}

/// Collects one response (head, then `Content-Length` bytes of body) and completes the exchange.
final class CollectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var promise: EventLoopPromise<ByteBuffer>?
    private var buffer: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if var pending = self.buffer {
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        self.buffer = nil
        let complete: ByteBuffer?? = bytes.withUnsafeReadableBytes { raw -> ByteBuffer?? in
            // The end of the head, then `Content-Length: ` inside it.
            guard let end = Self.find(Array("\r\n\r\n".utf8), in: raw) else { return .some(nil) }
            guard
                let field = Self.find(Array("Content-Length: ".utf8), in: UnsafeRawBufferPointer(rebasing: raw[..<end]))
            else { return nil }
            var length = 0
            var index = field + 16
            while index < end, raw[index] >= 48, raw[index] <= 57 {
                length = length * 10 + Int(raw[index] - 48)
                index += 1
            }
            let bodyStart = end + 4
            guard raw.count >= bodyStart + length else { return .some(nil) }
            return .some(bytes.getSlice(at: bytes.readerIndex + bodyStart, length: length))
        }
        switch complete {
        case .some(.some(let body)):
            let promise = self.promise
            self.promise = nil
            promise?.succeed(body)
        case .some(.none):
            self.buffer = bytes
        case .none:
            self.promise?.fail(CeilingError())
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise?.fail(CeilingError())
        self.promise = nil
    }

    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = 0
        while index <= haystack.count - needle.count {
            var matched = true
            for offset in 0..<needle.count where haystack[index + offset] != needle[offset] {
                matched = false
                break
            }
            if matched { return index }
            index += 1
        }
        return nil
    }
}

/// An upstream connection with its handler, used from its own event loop only.
final class Connection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<CollectingHandler>

    init(channel: any Channel, handler: NIOLoopBound<CollectingHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Writes `head` and waits for the response body. Call on the connection's loop.
    func exchange(_ head: ByteBuffer) async throws -> ByteBuffer {
        let promise = self.channel.eventLoop.makePromise(of: ByteBuffer.self)
        self.handler.value.promise = promise
        self.channel.writeAndFlush(head, promise: nil)
        return try await promise.futureResult.get()
    }
}

final class Pool: Sendable {
    private let idle = Mutex<[ObjectIdentifier: [Connection]]>([:])

    func take(on loop: any EventLoop) -> Connection? {
        self.idle.withLock { $0[ObjectIdentifier(loop)]?.popLast() }
    }

    func give(_ connection: Connection) {
        self.idle.withLock { $0[ObjectIdentifier(connection.channel.eventLoop), default: []].append(connection) }
    }

    func open(on loop: any EventLoop) async throws -> Connection {
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CollectingHandler())
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: CollectingHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return Connection(channel: channel, handler: handler)
    }
}

struct CeilingResponder: HTTPResponder {
    let pool = Pool()

    func respond(to request: ServerRequest, context: BasicContext) async throws -> ServerResponse {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { throw CeilingError() }
        let connection: Connection
        if let idle = self.pool.take(on: loop) {
            connection = idle
        } else {
            connection = try await self.pool.open(on: loop)
        }
        var head = ByteBuffer()
        head.writeString("GET \(request.head.path ?? "/") HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let body = try await connection.exchange(head)
        self.pool.give(connection)
        return ServerResponse(status: .ok, body: ResponseBody(buffer: body))
    }
}

var logger = Logger(label: "proxy-ceiling")
logger.logLevel = .warning
let server = HTTPServer(
    responder: CeilingResponder(), configuration: try HTTPServerConfiguration(host: "127.0.0.1", port: port),
    logger: logger)
try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
