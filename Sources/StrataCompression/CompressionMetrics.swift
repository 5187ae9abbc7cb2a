import CoreMetrics

/// The counters the compression middlewares report through swift-metrics.
///
/// - `strata_compression_responses_total`, `strata_compression_bytes_in_total`,
///   `strata_compression_bytes_out_total`, each with a `coding` dimension and a `path` one (the
///   library that compressed: `zlib`, `libdeflate`, `brotli`, `zstd`): the ratio is out/in.
/// - `strata_decompression_requests_total`, `strata_decompression_bytes_in_total`,
///   `strata_decompression_bytes_out_total` (`coding`),
///   and `strata_decompression_rejected_total` with a `reason` (`size`, `ratio`, `corrupt`,
///   `coding`).
struct CompressionMetrics: Sendable {
    /// Responses compressed, or requests inflated.
    let messages: Counter
    let bytesIn: Counter
    let bytesOut: Counter

    init(
        prefix: String, messages: String, coding: ContentCoding, path: CompressionPath? = nil,
        factory: (any MetricsFactory)?
    ) {
        var dimensions = [("coding", coding.rawValue)]
        if let path { dimensions.append(("path", path.rawValue)) }
        func counter(_ name: String) -> Counter {
            if let factory { return Counter(label: "\(prefix)_\(name)", dimensions: dimensions, factory: factory) }
            return Counter(label: "\(prefix)_\(name)", dimensions: dimensions)
        }
        self.messages = counter("\(messages)_total")
        self.bytesIn = counter("bytes_in_total")
        self.bytesOut = counter("bytes_out_total")
    }

    static func rejected(_ reason: String, factory: (any MetricsFactory)?) -> Counter {
        let dimensions = [("reason", reason)]
        if let factory {
            return Counter(label: "strata_decompression_rejected_total", dimensions: dimensions, factory: factory)
        }
        return Counter(label: "strata_decompression_rejected_total", dimensions: dimensions)
    }
}

/// The library that compressed a response: the `path` dimension of the response counters.
enum CompressionPath: String, Sendable {
    /// A zlib stream: every gzip and deflate response without the `Libdeflate` trait, and with
    /// it the streamed ones and those over its size cap.
    case zlib
    /// One libdeflate call over a whole in-memory body (`Libdeflate` trait).
    case libdeflate
    case brotli
    case zstd

    /// The streaming library of `coding`.
    init(streaming coding: ContentCoding) {
        switch coding {
        case .gzip, .deflate: self = .zlib
        case .brotli: self = .brotli
        case .zstd: self = .zstd
        }
    }
}
