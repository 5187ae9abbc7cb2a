import HTTPTypes
import Logging
import NIOCore
public import Strata

/// Set `context.values[SkipCompression.self] = true` in a handler to send its response as it is.
public enum SkipCompression: RequestValueKey {
    public typealias Value = Bool
}

/// Compresses response bodies with gzip or deflate (the system zlib), as the client asks.
///
/// Built with the `Libdeflate` trait, gzip and deflate bodies that are one in-memory buffer (up
/// to ``CompressionConfiguration/libdeflateMaximumSize``) are compressed in one call by the
/// system libdeflate instead; streams stay on zlib.
///
/// Negotiation follows RFC 9110 §12.5.3 (weights, `identity;q=0`, `*`, ties broken by the
/// configured order). A response is left as it is for `HEAD`, 1xx/204/304/206 statuses, a
/// request with `Range`, a response that already has `Content-Encoding` or `Cache-Control:
/// no-transform`, a media type not in the allow-list, a known length below the minimum, or when
/// the request predicate or `SkipCompression` say so.
///
/// A compressed response gets `Content-Encoding`, loses `Content-Length` and `Accept-Ranges`,
/// and has a strong `ETag` weakened; every response whose media type could be compressed gets
/// `Vary: Accept-Encoding`, merged with other middlewares' `Vary`. The body streams through one
/// compressor per response; `text/event-stream` bodies are flushed after every write so events
/// arrive at once. An error while compressing aborts the response rather than ending a body that
/// looks complete.
public struct ResponseCompressionMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    /// The validated configuration.
    public let configuration: CompressionConfiguration
    private let pools: [ContentCoding: EncoderPool]
    #if Libdeflate
    /// Whole bodies' gzip and deflate, or `nil` when neither is offered or the cap is 0.
    private let deflaters: WholeBodyDeflaterPool?
    #endif
    private let allocator = ByteBufferAllocator()

    /// Creates the middleware.
    ///
    /// - Throws: ``CompressionConfigurationError`` listing every value out of range.
    public init(configuration: CompressionConfiguration = .init()) throws(CompressionConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        var pools: [ContentCoding: EncoderPool] = [:]
        for coding in configuration.codings {
            do {
                pools[coding] = try EncoderPool(coding: coding, configuration: configuration) {
                    try configuration.makeEncoder(coding)
                }
            } catch {
                throw CompressionConfigurationError(problems: [
                    "zlib refused the settings for \(coding.rawValue): \(error)"
                ])
            }
        }
        self.pools = pools
        #if Libdeflate
        if configuration.libdeflateMaximumSize > 0,
            configuration.codings.contains(.gzip) || configuration.codings.contains(.deflate)
        {
            let level =
                configuration.libdeflateLevel
                ?? CompressionConfiguration.libdeflateLevel(matchingZlibLevel: configuration.level)
            do {
                self.deflaters = try WholeBodyDeflaterPool(
                    level: level, maximumSize: configuration.libdeflateMaximumSize, configuration: configuration)
            } catch {
                throw CompressionConfigurationError(problems: ["libdeflate refused level \(level): \(error)"])
            }
        } else {
            self.deflaters = nil
        }
        #endif
    }

    public func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var response = try await next(request, context)
        let configuration = self.configuration
        guard let contentType = response.headerFields[.contentType], configuration.compresses(contentType: contentType),
            Self.mayTransform(response)
        else { return response }
        response.headerFields.appendListElement("Accept-Encoding", to: .vary)

        if request.method == .head || request.headerFields[.range] != nil { return response }
        if let predicate = configuration.requestPredicate, !predicate(request) { return response }
        if context.values[SkipCompression.self] == true { return response }
        if let length = response.body.contentLength, length < configuration.minimumSize { return response }
        if response.body.isOpaque {
            // A body the host framework streams itself (a Vapor stream): it cannot be read here,
            // so it goes out as it is.
            context.logger.debug("response body is streamed by the host framework; sent uncompressed")
            return response
        }

        let coding: ContentCoding
        switch ContentCoding.negotiate(request.headerFields, preference: configuration.codings) {
        case .coding(let chosen):
            coding = chosen
        case .identity:
            return response
        case .notAcceptable:
            guard configuration.respondsNotAcceptable else { return response }
            return ServerResponse(error: HTTPError(.notAcceptable, message: "No acceptable content coding"))
        }

        guard let pool = self.pools[coding] else { return response }
        response.headerFields[.contentEncoding] = coding.rawValue
        response.headerFields[.contentLength] = nil
        let originalETag = response.headerFields[.eTag]
        let originalAcceptRanges = response.headerFields[.acceptRanges]
        response.headerFields[.acceptRanges] = nil
        if let originalETag, !originalETag.hasPrefix("W/") {
            response.headerFields[.eTag] = "W/" + originalETag
        }
        let padding = configuration.lengthPadding > 0 ? 10 + Int.random(in: 0...configuration.lengthPadding) : 0
        if let whole = response.body.buffer {
            // In memory already: compress it now, in one call, and send an exact length.
            #if Libdeflate
            if coding == .gzip || coding == .deflate, let deflaters = self.deflaters,
                whole.readableBytes <= deflaters.maximumSize
            {
                do {
                    response.body = ResponseBody(
                        buffer: try deflaters.compress(
                            whole, coding: coding, padding: padding, allocator: self.allocator))
                    return response
                } catch {
                    // The compressor is dropped; zlib below still compresses this body.
                    context.logger.warning(
                        "libdeflate failed; compressing with zlib instead", metadata: ["error": "\(error)"])
                }
            }
            #endif
            response.body = ResponseBody(
                buffer: try pool.compressWhole(whole, padding: padding, allocator: self.allocator))
            return response
        }
        let isEventStream =
            contentType.utf8.count >= 17 && contentType.prefix(17).equalsIgnoringASCIICase("text/event-stream")
        let decision = CompressingWriter.Decision(
            // A known length passed the minimum already; an unknown one is decided on its bytes.
            minimumSize: response.body.contentLength == nil ? configuration.minimumSize : 0,
            flushesEachWrite: isEventStream,
            padding: padding,
            originalETag: originalETag,
            originalAcceptRanges: originalAcceptRanges
        )
        response.body = response.body.transformed(contentLength: nil) { parent in
            try CompressingWriter(parent: parent, pool: pool, decision: decision)
        }
        return response
    }

    /// Statuses and fields that rule a transformation out.
    static func mayTransform(_ response: ServerResponse) -> Bool {
        let code = response.status.code
        if (100..<200).contains(code) || code == 204 || code == 304 || code == 206 { return false }
        if let encoding = response.headerFields[.contentEncoding], !encoding.equalsIgnoringASCIICase("identity") {
            return false
        }
        return !response.headerFields.containsListElement("no-transform", in: .cacheControl)
    }
}
