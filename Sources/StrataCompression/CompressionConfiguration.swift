public import CoreMetrics
public import Strata

/// How ``ResponseCompressionMiddleware`` decides and compresses.
public struct CompressionConfiguration: Sendable {
    /// Codings offered, most preferred first (ties in the client's weights go to the first).
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
    /// Whether a client that accepts neither a supported coding nor identity gets 406 instead of
    /// the identity content. Off by default: most clients are better served by the content.
    public var respondsNotAcceptable: Bool
    /// Decides per request whether compression may happen at all.
    public var requestPredicate: (@Sendable (ServerRequest) -> Bool)?
    /// Where the counters go (see `CompressionMetrics` in the guide); `nil` uses the process's
    /// `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?

    /// The defaults: gzip then deflate, 1 KiB minimum, level 6, text-like media types.
    public init() {
        self.codings = [.gzip, .deflate]
        self.minimumSize = 1024
        self.contentTypes = Self.defaultContentTypes
        self.level = 6
        self.memoryLevel = 8
        self.windowBits = 15
        self.respondsNotAcceptable = false
        self.requestPredicate = nil
        self.metricsFactory = nil
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
        if self.minimumSize < 0 { problems.append("minimumSize must not be negative") }
        if !(1...9).contains(self.level) { problems.append("level \(self.level) must be in 1...9") }
        if !(1...9).contains(self.memoryLevel) { problems.append("memoryLevel \(self.memoryLevel) must be in 1...9") }
        if !(9...15).contains(self.windowBits) { problems.append("windowBits \(self.windowBits) must be in 9...15") }
        for type in self.contentTypes where !type.hasPrefix("+") && !type.contains("/") {
            problems.append("content type \(type.debugDescription) must be type/subtype, type/*, or +suffix")
        }
        if !problems.isEmpty { throw CompressionConfigurationError(problems: problems) }
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
