public import CoreMetrics
public import Strata

/// How ``ResponseCompressionMiddleware`` decides and compresses.
public struct CompressionConfiguration: Sendable {
    /// Codings offered, most preferred first (ties in the client's weights go to the first).
    /// Default: ``ContentCoding/available`` — zstd and br first when their traits are on, then
    /// gzip and deflate.
    public var codings: [ContentCoding]
    /// Bodies of a known length below this are sent as they are. Default 1 KiB.
    public var minimumSize: Int
    /// Media types compressed: exact types (`application/json`), type wildcards (`text/*`), and
    /// structured-syntax suffixes (`+json`, `+xml`). Parameters are ignored.
    public var contentTypes: [String]
    /// zlib level, 1 (fastest) ... 9 (smallest). Default 6, as nginx and zlib.
    public var level: Int
    /// zlib memory level, 1...9. Default 8.
    public var memoryLevel: Int
    /// zlib window, 9...15 bits. Default 15.
    public var windowBits: Int
    /// Brotli quality, 0...11 (`Brotli` trait). Default 4: near gzip -6 in speed, smaller.
    public var brotliQuality: Int
    /// Brotli window, 10...24 bits (`Brotli` trait). Default 22.
    public var brotliWindowBits: Int
    /// zstd level, 1...19 (`Zstd` trait). Default 3, zstd's own. The window is capped at 8 MiB,
    /// as RFC 8878 asks of HTTP encoders.
    public var zstdLevel: Int
    /// With the `Libdeflate` trait: gzip and deflate bodies that are one in-memory buffer of at
    /// most this many bytes are compressed in one libdeflate call; streamed bodies, and bodies
    /// over this size, go through zlib. Default 8 MiB; 0 sends every body through zlib. Without
    /// the trait it is not used.
    public var libdeflateMaximumSize: Int
    /// With the `Libdeflate` trait: the libdeflate level, 1...12, or `nil` (the default) for
    /// ``libdeflateLevel(matchingZlibLevel:)`` of ``level``. Without the trait it is not used.
    public var libdeflateLevel: Int?
    /// Whether a client that accepts neither a supported coding nor identity gets 406 instead of
    /// the identity content. Off by default: most clients are better served by the content.
    public var respondsNotAcceptable: Bool
    /// Decides per request whether compression may happen at all.
    public var requestPredicate: (@Sendable (ServerRequest) -> Bool)?
    /// BREACH mitigation, off (0) by default. When above 0, every compressed body grows by a
    /// random 10...(10 + `lengthPadding`) bytes that decoders skip (empty deflate blocks), so
    /// its length no longer tells an attacker exactly how well a guessed secret compressed.
    /// It slows the attack (more requests to average the noise out) rather than stopping it;
    /// see the guide before relying on it. At most 65,536.
    public var lengthPadding: Int
    /// Where the counters go (see `CompressionMetrics` in the guide); `nil` uses the process's
    /// `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?

    /// The defaults: the available codings, 1 KiB minimum, level 6, text-like media types.
    public init() {
        self.codings = ContentCoding.available
        self.brotliQuality = 4
        self.brotliWindowBits = 22
        self.zstdLevel = 3
        self.minimumSize = 1024
        self.contentTypes = Self.defaultContentTypes
        self.level = 6
        self.memoryLevel = 8
        self.windowBits = 15
        self.respondsNotAcceptable = false
        self.requestPredicate = nil
        self.metricsFactory = nil
        self.lengthPadding = 0
        self.libdeflateMaximumSize = 8 * 1024 * 1024
        self.libdeflateLevel = nil
    }

    /// The libdeflate level used for a zlib level when ``libdeflateLevel`` is `nil`: the fastest
    /// whose output is, on average over a corpus of typical web text, no larger than zlib's at
    /// `level` (1 → 1, 2 → 1, 3 → 2, 4 → 3, 5 → 5, 6 → 6, 7 → 6, 8 → 7, 9 → 7). The guide shows
    /// the measurement and how to rerun it (`scripts/bench-deflate-levels.sh`).
    ///
    /// - Parameter level: A zlib level, 1...9; values outside are clamped.
    public static func libdeflateLevel(matchingZlibLevel level: Int) -> Int {
        let map = [1, 1, 2, 3, 5, 6, 6, 7, 7]
        return map[min(max(level, 1), 9) - 1]
    }

    /// Text, JSON, JavaScript, XML, SVG, WebAssembly; never images, video, audio or archives,
    /// which are compressed already.
    public static let defaultContentTypes = [
        "text/*", "application/json", "application/javascript", "application/xml", "application/wasm",
        "application/x-javascript", "application/ld+json", "application/manifest+json", "image/svg+xml",
        "+json", "+xml",
    ]
}

/// A ``CompressionConfiguration`` that was refused, with every problem.
public struct CompressionConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every value out of range, with what it must be.
    public let problems: [String]
    public var description: String { "invalid compression configuration: " + self.problems.joined(separator: "; ") }
}

extension CompressionConfiguration {
    func validate() throws(CompressionConfigurationError) {
        var problems: [String] = []
        if self.codings.isEmpty { problems.append("codings must list at least one coding") }
        for coding in self.codings where !coding.isAvailable {
            let trait = coding == .brotli ? "Brotli" : "Zstd"
            problems.append("\(coding.rawValue) needs the package built with the \(trait) trait")
        }
        if !(0...11).contains(self.brotliQuality) {
            problems.append("brotliQuality \(self.brotliQuality) must be in 0...11")
        }
        if !(10...24).contains(self.brotliWindowBits) {
            problems.append("brotliWindowBits \(self.brotliWindowBits) must be in 10...24")
        }
        if !(1...19).contains(self.zstdLevel) { problems.append("zstdLevel \(self.zstdLevel) must be in 1...19") }
        if self.minimumSize < 0 { problems.append("minimumSize must not be negative") }
        if !(1...9).contains(self.level) { problems.append("level \(self.level) must be in 1...9") }
        if !(1...9).contains(self.memoryLevel) { problems.append("memoryLevel \(self.memoryLevel) must be in 1...9") }
        if !(0...65536).contains(self.lengthPadding) {
            problems.append("lengthPadding \(self.lengthPadding) must be in 0...65536")
        }
        if self.libdeflateMaximumSize < 0 { problems.append("libdeflateMaximumSize must not be negative") }
        if let level = self.libdeflateLevel, !(1...12).contains(level) {
            problems.append("libdeflateLevel \(level) must be in 1...12")
        }
        if !(9...15).contains(self.windowBits) { problems.append("windowBits \(self.windowBits) must be in 9...15") }
        for type in self.contentTypes where !type.hasPrefix("+") && !type.contains("/") {
            problems.append("content type \(type.debugDescription) must be type/subtype, type/*, or +suffix")
        }
        if !problems.isEmpty { throw CompressionConfigurationError(problems: problems) }
    }

    /// A new stream for `coding` with these settings.
    func makeEncoder(_ coding: ContentCoding) throws -> any StreamEncoder {
        switch coding {
        case .gzip, .deflate:
            return try ZlibEncoder(
                gzip: coding == .gzip, level: self.level, memoryLevel: self.memoryLevel, windowBits: self.windowBits)
        case .brotli:
            #if Brotli
            return try BrotliEncoder(quality: self.brotliQuality, windowBits: self.brotliWindowBits)
            #else
            throw EncoderError(description: "br needs the Brotli trait")
            #endif
        case .zstd:
            #if Zstd
            return try ZstdEncoder(level: self.zstdLevel)
            #else
            throw EncoderError(description: "zstd needs the Zstd trait")
            #endif
        }
    }

    /// Whether `contentType` (a `Content-Type` value) is one to compress. Compares bytes,
    /// ignoring case and parameters, without building new strings.
    func compresses(contentType: String) -> Bool {
        var media = Substring(contentType)
        if let semicolon = media.firstIndex(of: ";") { media = media[..<semicolon] }
        media = media.trimmingOWS()
        guard let slash = media.firstIndex(of: "/") else { return false }
        let type = media[..<slash]
        for pattern in self.contentTypes {
            if pattern.hasPrefix("+") {
                if media.utf8.count >= pattern.utf8.count,
                    media.suffix(pattern.count).equalsIgnoringASCIICase(pattern)
                {
                    return true
                }
            } else if pattern.hasSuffix("/*") {
                if type.equalsIgnoringASCIICase(pattern.dropLast(2)) { return true }
            } else if media.equalsIgnoringASCIICase(pattern) {
                return true
            }
        }
        return false
    }
}
