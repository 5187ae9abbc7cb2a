public import HTTPTypes
import Strata

/// A content coding the middlewares can apply or remove.
public enum ContentCoding: String, Sendable, Hashable, CaseIterable {
    /// gzip (RFC 1952).
    case gzip
    /// deflate in the zlib format (RFC 1950), as RFC 9110 defines the `deflate` coding.
    case deflate
    /// Brotli (RFC 7932); compressed only when the package is built with the `Brotli` trait.
    case brotli = "br"
    /// Zstandard (RFC 8878); compressed only when the package is built with the `Zstd` trait.
    case zstd

    /// Parses a `Content-Encoding` token, accepting `x-gzip` as gzip (RFC 9110 §8.4.1.3).
    public init?(token: some StringProtocol) {
        if token.equalsIgnoringASCIICase("gzip") || token.equalsIgnoringASCIICase("x-gzip") {
            self = .gzip
        } else if token.equalsIgnoringASCIICase("deflate") {
            self = .deflate
        } else if token.equalsIgnoringASCIICase("br") {
            self = .brotli
        } else if token.equalsIgnoringASCIICase("zstd") {
            self = .zstd
        } else {
            return nil
        }
    }

    /// The codings this build can produce: gzip and deflate always, `br` and `zstd` with their
    /// package traits.
    public static let available: [ContentCoding] = {
        var codings: [ContentCoding] = []
        #if Zstd
        codings.append(.zstd)
        #endif
        #if Brotli
        codings.append(.brotli)
        #endif
        return codings + [.gzip, .deflate]
    }()

    /// Whether this build can produce the coding.
    public var isAvailable: Bool { Self.available.contains(self) }
}

/// The outcome of content negotiation for one request.
public enum CodingChoice: Sendable, Hashable {
    /// Compress with this coding.
    case coding(ContentCoding)
    /// Send the content as it is.
    case identity
    /// The client accepts neither a supported coding nor identity.
    case notAcceptable
}

extension ContentCoding {
    /// Chooses a coding for a request's `Accept-Encoding` (RFC 9110 §12.5.3).
    ///
    /// The highest non-zero weight wins; ties go to the earlier coding in `preference`. No
    /// `Accept-Encoding` field means identity. Identity stays acceptable unless the client
    /// refuses it (`identity;q=0`, or `*;q=0` without an `identity` element). Malformed elements
    /// are ignored.
    ///
    /// - Parameters:
    ///   - fields: The request's header fields.
    ///   - preference: The server's codings, most preferred first.
    public static func negotiate(_ fields: HTTPFields, preference: [ContentCoding]) -> CodingChoice {
        guard fields[.acceptEncoding] != nil else { return .identity }
        // One pass over the field, no intermediate list: this runs for every response.
        var gzip: Int?
        var deflate: Int?
        var brotli: Int?
        var zstd: Int?
        var identity: Int?
        var wildcard: Int?
        QualityList.forEachElement(in: fields, name: .acceptEncoding) { value, quality in
            if value.equalsIgnoringASCIICase("gzip") || value.equalsIgnoringASCIICase("x-gzip") {
                gzip = max(gzip ?? 0, quality)
            } else if value.equalsIgnoringASCIICase("deflate") {
                deflate = quality
            } else if value.equalsIgnoringASCIICase("br") {
                brotli = quality
            } else if value.equalsIgnoringASCIICase("zstd") {
                zstd = quality
            } else if value.equalsIgnoringASCIICase("identity") {
                identity = quality
            } else if value == "*" {
                wildcard = quality
            }
        }
        var best: (coding: ContentCoding, quality: Int)?
        for coding in preference {
            let stated: Int? =
                switch coding {
                case .gzip: gzip
                case .deflate: deflate
                case .brotli: brotli
                case .zstd: zstd
                }
            let quality = stated ?? wildcard ?? 0
            if quality > 0, quality > (best?.quality ?? 0) { best = (coding, quality) }
        }
        if let best { return .coding(best.coding) }
        return (identity ?? wildcard) == 0 ? .notAcceptable : .identity
    }
}
