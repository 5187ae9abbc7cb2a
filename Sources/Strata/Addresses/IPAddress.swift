#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes, parsed strictly.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Parses `text` as a dotted-quad IPv4 or an IPv6 address (no brackets, no zone); `nil`
    /// otherwise. An IPv4-mapped IPv6 address is returned as IPv4.
    public init?(_ text: some StringProtocol) {
        let string = String(text)
        // Raw byte buffers rather than in_addr/in6_addr, whose importer-made initialisers clash
        // between Glibc and NIO's C shims under MemberImportVisibility.
        var bytes = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, string, &bytes) == 1 {
            self.bytes = Array(bytes[0..<4])
        } else if inet_pton(AF_INET6, string, &bytes) == 1 {
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                self.bytes = Array(bytes[12...])
            } else {
                self.bytes = bytes
            }
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Whether this is an IPv4 address.
    public var isIPv4: Bool { self.bytes.count == 4 }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var bytes = self.bytes
        let family = self.isIPv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeMutableBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block of addresses in CIDR notation, such as `10.0.0.0/8` or `2001:db8::/32`.
public struct IPAddressRange: Sendable, Hashable, CustomStringConvertible {
    /// The first address of the block.
    public let network: IPAddress
    /// The prefix length in bits.
    public let prefixLength: Int

    /// Parses `a.b.c.d/n`, `ipv6/n`, or a single address (a full-length prefix).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let maxLength = address.bytes.count * 8
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parts[1].allSatisfy(\.isASCII), (0...maxLength).contains(parsed) else {
                return nil
            }
            length = parsed
        } else {
            length = maxLength
        }
        self.prefixLength = length
        self.network = IPAddress(bytes: Self.mask(address.bytes, length))
    }

    /// Whether `address` is in this block.
    public func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == self.network.bytes.count
            && Self.mask(address.bytes, self.prefixLength) == self.network.bytes
    }

    public var description: String { "\(self.network)/\(self.prefixLength)" }

    private static func mask(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var masked = bytes
        for index in masked.indices {
            let bits = max(0, min(8, length - index * 8))
            masked[index] &= bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
        return masked
    }
}
