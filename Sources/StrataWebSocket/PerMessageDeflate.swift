import CompressNIO
import NIOCore
import Strata

/// permessage-deflate (RFC 7692): messages compressed with raw deflate, through the system
/// zlib. Off unless set in ``WebSocketConfiguration/compression``.
public struct PerMessageDeflate: Sendable, Hashable {
    /// Reset the server's compressor after every message (less memory held between messages,
    /// worse ratios). Also done when the client asks.
    public var serverNoContextTakeover: Bool
    /// Ask the client to reset its compressor after every message.
    public var clientNoContextTakeover: Bool
    /// The server's compression window, 9...15 bits (a client may ask for less). Default 15.
    public var serverMaxWindowBits: Int
    /// zlib level for outbound messages, 1...9. Default 6.
    public var level: Int
    /// zlib memory level for outbound messages, 1...9. Default 8.
    public var memoryLevel: Int
    /// Messages smaller than this many bytes are sent uncompressed. Default 64.
    public var minimumSize: Int

    /// The defaults: context takeover both ways, 15-bit windows, level 6, 64-byte minimum.
    public init() {
        self.serverNoContextTakeover = false
        self.clientNoContextTakeover = false
        self.serverMaxWindowBits = 15
        self.level = 6
        self.memoryLevel = 8
        self.minimumSize = 64
    }

    func problems() -> [String] {
        var problems: [String] = []
        if !(9...15).contains(self.serverMaxWindowBits) {
            problems.append("compression.serverMaxWindowBits must be in 9...15")
        }
        if !(1...9).contains(self.level) { problems.append("compression.level must be in 1...9") }
        if !(1...9).contains(self.memoryLevel) { problems.append("compression.memoryLevel must be in 1...9") }
        if self.minimumSize < 0 { problems.append("compression.minimumSize must not be negative") }
        return problems
    }
}

/// The parameters agreed for one connection.
struct DeflateAgreement: Sendable, Hashable {
    var serverNoContextTakeover: Bool
    var clientNoContextTakeover: Bool
    var serverWindowBits: Int
    /// The `Sec-WebSocket-Extensions` value of the 101.
    var responseHeader: String

    /// The first offer in `Sec-WebSocket-Extensions` values the server can accept (RFC 7692 §5):
    /// offers with unknown, repeated or out-of-range parameters are declined; a client that
    /// wants an 8-bit server window is declined, since zlib cannot compress with one.
    static func negotiate(offers values: [String], configuration: PerMessageDeflate) -> DeflateAgreement? {
        for offer in values.flatMap({ $0.split(separator: ",") }) {
            var parts = offer.split(separator: ";").map { $0.trimmingOWS() }
            guard let name = parts.first, name.equalsIgnoringASCIICase("permessage-deflate") else { continue }
            parts.removeFirst()
            if let agreement = Self.accept(parts, configuration: configuration) { return agreement }
        }
        return nil
    }

    private static func accept(_ parameters: [Substring], configuration: PerMessageDeflate) -> DeflateAgreement? {
        var seen: Set<String> = []
        var serverNoTakeover = false
        var clientNoTakeover = false
        var serverBits: Int?
        var clientBitsOffered = false
        var clientBits: Int?
        for parameter in parameters {
            let pieces = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingOWS() }
            let name = pieces[0].lowercased()
            var value = pieces.count > 1 ? pieces[1] : nil
            if let quoted = value, quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\"") {
                value = quoted.dropFirst().dropLast()
            }
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                serverNoTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                clientNoTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = Self.windowBits(value) else { return nil }
                serverBits = bits
            case "client_max_window_bits":
                clientBitsOffered = true
                if let value {
                    guard let bits = Self.windowBits(value) else { return nil }
                    clientBits = bits
                }
            default:
                return nil
            }
        }
        if let serverBits, serverBits < 9 { return nil }
        let window = min(configuration.serverMaxWindowBits, serverBits ?? 15)
        var header = "permessage-deflate"
        let resetsServer = serverNoTakeover || configuration.serverNoContextTakeover
        if resetsServer { header += "; server_no_context_takeover" }
        if clientNoTakeover || configuration.clientNoContextTakeover { header += "; client_no_context_takeover" }
        if window < 15 || serverBits != nil { header += "; server_max_window_bits=\(window)" }
        if clientBitsOffered, let clientBits { header += "; client_max_window_bits=\(clientBits)" }
        return DeflateAgreement(
            serverNoContextTakeover: resetsServer,
            clientNoContextTakeover: clientNoTakeover || configuration.clientNoContextTakeover,
            serverWindowBits: window,
            responseHeader: header
        )
    }

    /// 8...15, written without leading zeros (RFC 7692 §7.1.2).
    private static func windowBits(_ text: Substring) -> Int? {
        guard let first = text.first, first != "0", let bits = Int(text), (8...15).contains(bits) else { return nil }
        return bits
    }
}

/// Compresses outbound messages of one connection; used under the connection's write lock, so
/// messages are compressed in the order they are sent (the context depends on it).
///
/// `@unchecked Sendable`: only ``WebSocket/write(_:size:isData:)`` uses it, while holding the
/// connection's write lock, which admits one task at a time and orders their accesses.
final class MessageDeflater: @unchecked Sendable {
    private let zlib: ZlibCompressor
    private let resets: Bool
    private let allocator = ByteBufferAllocator()

    init(agreement: DeflateAgreement, configuration: PerMessageDeflate) throws {
        var zlib = ZlibConfiguration()
        zlib.windowSize = Int32(agreement.serverWindowBits)
        zlib.compressionLevel = Int32(configuration.level)
        zlib.memoryLevel = Int32(configuration.memoryLevel)
        self.zlib = try ZlibCompressor(algorithm: .deflate, configuration: zlib)
        self.resets = agreement.serverNoContextTakeover
    }

    /// The message compressed and sync-flushed, without the final `00 00 ff ff` (RFC 7692 §7.2.1).
    func compress(_ payload: ByteBuffer) throws -> ByteBuffer {
        var input = payload
        var output = self.allocator.buffer(capacity: self.zlib.maxSize(from: input) + 16)
        try self.zlib.deflate(from: &input, to: &output, flush: .sync)
        if output.readableBytes >= 4, output.getInteger(at: output.writerIndex - 4, as: UInt32.self) == 0x0000_FFFF {
            output.moveWriterIndex(to: output.writerIndex - 4)
        }
        if self.resets { try self.zlib.reset() }
        return output
    }
}

/// Inflates inbound compressed messages of one connection; used only by its reader.
final class MessageInflater {
    private let zlib: ZlibDecompressor
    private let resets: Bool
    private let allocator = ByteBufferAllocator()
    private static let tail = ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF])

    init(agreement: DeflateAgreement) throws {
        // A 15-bit window inflates whatever window the client compressed with.
        self.zlib = try ZlibDecompressor(algorithm: .deflate, windowSize: 15)
        self.resets = agreement.clientNoContextTakeover
    }

    /// Inflates one frame's payload of a compressed message into `message`, failing with 1009
    /// as soon as the message would exceed `limit` inflated bytes.
    func inflate(_ payload: ByteBuffer, isLast: Bool, into message: inout ByteBuffer, limit: Int)
        throws(ProtocolViolation)
    {
        var input = payload
        if isLast { input.writeImmutableBuffer(Self.tail) }
        while true {
            let room = limit - message.readableBytes
            var output = self.allocator.buffer(capacity: min(64 << 10, max(room, 0) + 1))
            var full = false
            do {
                try self.zlib.inflate(from: &input, to: &output)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                full = true
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // All input consumed.
            } catch {
                throw ProtocolViolation(code: .invalidPayload, reason: "compressed message does not inflate")
            }
            guard output.readableBytes <= room else {
                throw ProtocolViolation(code: .messageTooBig, reason: "message inflates beyond \(limit) bytes")
            }
            message.writeBuffer(&output)
            if !full && input.readableBytes == 0 { break }
        }
        if isLast && self.resets { try? self.zlib.reset() }
    }
}
