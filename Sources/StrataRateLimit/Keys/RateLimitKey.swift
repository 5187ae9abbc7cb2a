public import NIOCore
public import Strata

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who a quota counts: a client address (IPv6 grouped into a prefix), or any text (an API key,
/// a user ID, a route).
///
/// Addresses are kept as numbers, so building and hashing a key allocates nothing.
public struct RateLimitKey: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline
    enum Storage: Hashable, Sendable {
        case ipv4(UInt32)
        case ipv6(high: UInt64, low: UInt64, prefixLength: UInt8)
        case text(String)
    }

    @usableFromInline
    let storage: Storage

    @inlinable
    init(storage: Storage) {
        self.storage = storage
    }

    /// A key made of any text: an API key, a user ID, a tenant, a route.
    public init(_ text: String) {
        self.storage = .text(text)
    }

    /// The key of an IPv4 address, or of the `/ipv6Prefix` block holding an IPv6 address.
    public init(address: IPAddress, ipv6Prefix: Int = 56) {
        if address.isIPv4 {
            var value: UInt32 = 0
            for byte in address.bytes { value = value << 8 | UInt32(byte) }
            self.storage = .ipv4(value)
        } else {
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in address.bytes.enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self = Self.ipv6(high: high, low: low, prefix: ipv6Prefix)
        }
    }

    /// The key of a socket peer, read straight from the socket address (no text, no allocation).
    ///
    /// - Returns: `nil` for a Unix-domain peer.
    public init?(peer: SocketAddress?, ipv6Prefix: Int = 56) {
        switch peer {
        // The address bytes are read at their fixed offsets in sockaddr_in (4) and sockaddr_in6
        // (8), the same on Linux and Darwin: the field names clash between Glibc and NIO's C
        // shims under member import visibility.
        case .v4(let address):
            var value: UInt32 = 0
            withUnsafeBytes(of: address.address) { raw in
                for index in 4..<8 { value = value << 8 | UInt32(raw[index]) }
            }
            self.storage = .ipv4(value)
        case .v6(let address):
            var high: UInt64 = 0
            var low: UInt64 = 0
            withUnsafeBytes(of: address.address) { raw in
                for index in 8..<24 {
                    if index < 16 { high = high << 8 | UInt64(raw[index]) } else { low = low << 8 | UInt64(raw[index]) }
                }
            }
            // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 client it maps.
            if high == 0 && low >> 32 == 0xFFFF {
                self.storage = .ipv4(UInt32(truncatingIfNeeded: low))
            } else {
                self = Self.ipv6(high: high, low: low, prefix: ipv6Prefix)
            }
        default:
            return nil
        }
    }

    private static func ipv6(high: UInt64, low: UInt64, prefix: Int) -> RateLimitKey {
        let bits = max(0, min(128, prefix))
        let highMask: UInt64 = bits >= 64 ? .max : (bits == 0 ? 0 : ~(UInt64.max >> UInt64(bits)))
        let lowMask: UInt64 = bits <= 64 ? 0 : (bits == 128 ? .max : ~(UInt64.max >> UInt64(bits - 64)))
        return RateLimitKey(storage: .ipv6(high: high & highMask, low: low & lowMask, prefixLength: UInt8(bits)))
    }

    /// Whether the key is a client address (or address block).
    public var isAddress: Bool {
        if case .text = self.storage { return false }
        return true
    }

    /// The key as text, unambiguous between kinds: `ip:203.0.113.7`, `ip:2001:db8:ab00::/56`,
    /// `k:<text>`. Stores that need a string (Redis) use it.
    public var description: String {
        switch self.storage {
        case .ipv4(let value):
            return "ip:\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
        case .ipv6(let high, let low, let prefixLength):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16)
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
            }
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
            }
            var text = [CChar](repeating: 0, count: 64)
            _ = bytes.withUnsafeMutableBytes { raw in
                inet_ntop(AF_INET6, raw.baseAddress, &text, socklen_t(text.count))
            }
            let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "ip:\(address)/\(prefixLength)"
        case .text(let text):
            return "k:\(text)"
        }
    }

    /// A cheap, well-mixed hash for choosing a shard; the dictionary inside hashes again.
    var shardHash: UInt64 {
        switch self.storage {
        case .ipv4(let value): return Self.mix(UInt64(value))
        case .ipv6(let high, let low, _): return Self.mix(high ^ (low &* 0x9E37_79B9_7F4A_7C15))
        case .text(let text): return UInt64(bitPattern: Int64(text.hashValue))
        }
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var x = value &+ 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }
}
