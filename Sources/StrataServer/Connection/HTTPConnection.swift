import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Strata

/// Serves the requests of one connection, in order, in one task.
///
/// The responder runs in this task; the request body reads from the same inbound stream, so
/// back-pressure reaches the client, and pipelined requests are answered in order.
struct HTTPConnection<Responder: HTTPResponder> where Responder.Context: ServerContext {
    let responder: Responder
    let configuration: HTTPServerConfiguration
    let registry: ConnectionRegistry
    let channel: any Channel
    let reader: ConnectionReader
    let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>
    /// Where the handler's 1xx responses go; closed before each final response.
    let informational: InformationalWriter
    let source: ContextSource
    var logger: Logger { self.source.logger }

    func run() async {
        while true {
            let part: ServerInboundPart?
            do {
                part = try await self.reader.nextPart()
            } catch let error as HTTPParserError {
                let status: HTTPResponse.Status = error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
                self.logger.info(
                    "rejected malformed request", metadata: ["status": "\(status.code)", "error": "\(error)"])
                await self.writeSimple(status: status)
                break
            } catch {
                self.logger.debug("connection read failed", metadata: ["error": "\(error)"])
                break
            }
            guard let part else { break }
            switch part {
            case .head(let info):
                guard await self.serve(info) else {
                    await self.close()
                    return
                }
            case .invalid(let status, let reason):
                self.logger.info("rejected request", metadata: ["status": "\(status.code)", "reason": "\(reason)"])
                await self.writeSimple(status: status)
                await self.close()
                return
            case .body, .end, .raw:
                self.logger.debug("unexpected request part; closing")
                await self.close()
                return
            }
        }
        await self.close()
    }

    /// Flushes what was written, closes the sending side, and reads until the client closes so
    /// the last response is not lost to a reset.
    private func close() async {
        self.outbound.finish()
        await self.reader.discardRemaining()
    }

    /// Serves one request; returns whether the connection may carry another.
    private func serve(_ info: RequestHeadInfo) async -> Bool {
        let limit = self.configuration.maxRequestBodySize
        guard let requestNumber = try? await self.reader.beginRequest(info, limit: limit) else { return false }
        if let declared = info.contentLength, declared > limit {
            self.logger.info(
                "rejected request body over the limit", metadata: ["declared": "\(declared)", "limit": "\(limit)"])
            await self.writeSimple(status: .contentTooLarge)
            return false
        }
        let body =
            info.hasBody
            ? RequestBody(
                stream: ServerRequestBodyStream(reader: self.reader, request: requestNumber),
                expectedLength: info.contentLength
            )
            : RequestBody.empty
        let request = ServerRequest(head: info.request, body: body)
        let context = Responder.Context(source: self.source)
        self.informational.begin(info)

        var response: ServerResponse
        do {
            response = try await self.responder.respond(to: request, context: context)
        } catch {
            response = Self.errorResponse(for: error, logger: self.logger)
        }
        self.informational.end()

        if response.upgrade != nil || response.status == .switchingProtocols {
            if let upgrade = response.upgrade, response.status == .switchingProtocols, info.asksToUpgrade {
                await self.performUpgrade(response: response, upgrade: upgrade)
                return false
            }
            self.logger.error(
                "a handler answered 101 without an upgrade, or upgraded a request that did not ask to upgrade",
                metadata: ["path": "\(info.request.path ?? "")"]
            )
            response = ServerResponse(status: .internalServerError, body: ResponseBody(string: "Internal Server Error"))
        }

        var keepAlive =
            info.keepAlive && !info.parserStops && !self.registry.isQuiescing
            && !response.headerFields.containsListElement("close", in: .connection)
            && !(response.body.buffer != nil && self.reader.mustCloseAfterResponse())
        guard await self.write(response, for: info, keepAlive: &keepAlive) else { return false }
        guard keepAlive else { return false }
        return await self.reader.finishRequest()
    }

    /// Writes `response`; returns `false` when the connection broke or must close.
    private func write(_ response: ServerResponse, for info: RequestHeadInfo, keepAlive: inout Bool) async -> Bool {
        let isHead = info.request.method == .head
        var head = self.prepareHead(
            response.head, bodyLength: response.body.contentLength, info: info, keepAlive: &keepAlive)
        do {
            if let buffer = response.body.buffer {
                let sendsBody = !isHead && buffer.readableBytes > 0 && Self.mayHaveBody(response.status)
                try await self.writeWhole(head, sendsBody ? buffer : nil)
                return true
            }
            let state = ResponseWriteState(
                outbound: self.outbound,
                reader: self.reader,
                head: head,
                isHeadRequest: isHead || !Self.mayHaveBody(response.status),
                declaredLength: response.body.contentLength
            )
            var writer: any ResponseBodyWriter = RootResponseBodyWriter(state: state)
            do {
                try await response.body.write(to: &writer)
                try await state.finish(trailers: nil)
            } catch {
                guard state.pendingHead != nil else { throw error as any Error }
                // Nothing was sent yet: the failure can still become an error response.
                let errorResponse = Self.errorResponse(for: error, logger: self.logger)
                keepAlive = false
                head = self.prepareHead(
                    errorResponse.head, bodyLength: errorResponse.body.contentLength, info: info, keepAlive: &keepAlive)
                let sendsBody = !isHead && Self.mayHaveBody(errorResponse.status)
                try await self.writeWhole(head, sendsBody ? errorResponse.body.buffer : nil)
            }
            return true
        } catch {
            self.logger.info("response aborted; closing the connection", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Writes a response held whole in memory (a handler's, an error answer, a rejection).
    ///
    /// On the connection's event loop, with the channel writable, the part goes straight into
    /// the pipeline: NIOAsyncChannel's writer would hand it to the same handlers, after its state
    /// machine and lock (9% more small responses per second without them). Order holds, since
    /// everything this task wrote before was handed over when its write returned (this task is
    /// the connection's only writer). An unwritable channel takes the writer's path, which waits
    /// for the client to read.
    private func writeWhole(_ head: ResponseHead, _ body: ByteBuffer?) async throws {
        if self.channel.eventLoop.inEventLoop, self.channel.isWritable {
            guard self.channel.isActive else { throw ChannelError.ioOnClosedChannel }
            self.channel.pipeline.syncOperations.writeAndFlush(
                NIOAny(ServerOutboundPart.whole(head, body)), promise: nil)
            return
        }
        try await self.outbound.write(.whole(head, body))
    }

    static func mayHaveBody(_ status: HTTPResponse.Status) -> Bool {
        !(100..<200).contains(status.code) && status.code != 204 && status.code != 304
    }

    /// The head as it goes out: the framing (`Content-Length` or chunked), `Date`, `Server` and
    /// `Connection` decided here and added by the encoder; the handler's fields are not copied.
    private func prepareHead(
        _ response: HTTPResponse,
        bodyLength: Int?,
        info: RequestHeadInfo,
        keepAlive: inout Bool
    ) -> ResponseHead {
        var head = ResponseHead(status: response.status, fields: response.headerFields)
        if !Self.mayHaveBody(response.status) {
            // A 304 keeps the length of the response it stands for; 1xx and 204 have none.
            head.keepsContentLengthField = response.status.code == 304
        } else if info.request.method == .head {
            if let bodyLength, bodyLength > 0 || !response.headerFields.contains(.contentLength) {
                head.contentLength = bodyLength
            } else {
                head.keepsContentLengthField = true
            }
        } else if let bodyLength {
            head.contentLength = bodyLength
        } else if info.isHTTP10 {
            keepAlive = false  // HTTP/1.0 has no chunked coding: the close ends the body
        } else {
            head.chunked = true
        }
        head.addsDate = true
        head.server = self.configuration.serverName
        if !keepAlive {
            head.connection = .close
        } else if info.isHTTP10 {
            head.connection = .keepAlive
        }
        return head
    }

    /// A bodyless error answer that closes the connection.
    private func writeSimple(status: HTTPResponse.Status) async {
        let body = ByteBuffer(string: status.reasonPhrase)
        var head = ResponseHead(status: status, fields: [.contentType: "text/plain; charset=utf-8"])
        head.contentLength = body.readableBytes
        head.addsDate = true
        head.connection = .close
        try? await self.writeWhole(head, body)
    }

    /// The response for an error thrown by a handler: its own status for an
    /// `HTTPResponseError`, else a 500 that says nothing about the error (which is logged).
    static func errorResponse(for error: any Error, logger: Logger) -> ServerResponse {
        let response = ServerResponse(error: error)
        if response.status.code >= 500 {
            logger.error("handler failed", metadata: ["status": "\(response.status.code)", "error": "\(error)"])
        } else {
            logger.debug(
                "handler answered with an error", metadata: ["status": "\(response.status.code)", "error": "\(error)"])
        }
        return response
    }

    /// Sends the 101, swaps the HTTP handlers for raw bytes and runs the upgraded protocol.
    private func performUpgrade(response: ServerResponse, upgrade: ConnectionUpgrade) async {
        guard await self.reader.finishRequest() else { return }
        var fields = response.headerFields
        fields[.date] = nil
        var head = ResponseHead(status: response.status, fields: fields)
        head.addsDate = true
        do {
            try await self.outbound.write(contentsOf: [.head(head), .end(nil)])
            try await self.channel.eventLoop.flatSubmit { [channel] in
                Self.switchToRawBytes(channel: channel)
            }.get()
        } catch {
            self.logger.info("upgrade failed before hand-over", metadata: ["error": "\(error)"])
            return
        }
        let connection = UpgradedConnection(
            inbound: UpgradedConnection.Inbound(UpgradedInboundStream(reader: self.reader)),
            outbound: UpgradedOutboundWriter(outbound: self.outbound),
            logger: self.logger,
            remoteAddress: self.source.remoteAddress
        )
        do {
            try await upgrade.run(connection)
        } catch {
            self.logger.info("upgraded connection ended with an error", metadata: ["error": "\(error)"])
        }
    }

    private static func switchToRawBytes(channel: any Channel) -> EventLoopFuture<Void> {
        do {
            let pipeline = channel.pipeline.syncOperations
            let codec = try pipeline.handler(type: ServerCodec.self)
            let connectionGuard = try pipeline.handler(type: ConnectionGuard.self)
            try pipeline.addHandler(UpgradedBytesHandler(), position: .after(codec))
            channel.pipeline.triggerUserOutboundEvent(ConnectionEvent.upgraded, promise: nil)
            return channel.pipeline.removeHandler(codec)
                .flatMap { channel.pipeline.removeHandler(name: PipelineNames.decoder) }
                .map {
                    // Bytes the parser held back are forwarded on removal without a read-complete,
                    // and the async channel delivers reads on read-complete.
                    channel.pipeline.fireChannelReadComplete()
                    // A FIN that came with the upgrade request ends the upgraded input after them.
                    connectionGuard.releaseHeldInputClosed()
                }
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}

enum PipelineNames {
    static let connectionGuard = "strata.guard"
    static let decoder = "strata.decoder"
    static let codec = "strata.codec"
}
