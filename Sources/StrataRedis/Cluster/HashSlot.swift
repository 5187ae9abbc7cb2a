public import NIOCore

/// The Redis Cluster slot of a key: CRC16-XMODEM of the key (or of its hash tag) mod 16384.
///
/// A hash tag is the part between the first `{` and the next `}`, when it is not empty:
/// `{user:1}:cart` and `{user:1}:profile` share a slot, so one script or transaction can use
/// both. Every multi-key call the Strata stores make keys its names this way.
public struct HashSlot: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    /// Slots in a cluster.
    public static let count = 16384

    public init(rawValue: UInt16) {
        self.rawValue = rawValue % UInt16(Self.count)
    }

    /// The slot of `key`.
    public init(key: some Collection<UInt8>) {
        let bytes = Array(key)
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = bytes[(open + 1)..<close]
        }
        self.rawValue = Self.crc16(hashed) & 0x3FFF
    }

    /// The slot of `key`.
    public init(key: ByteBuffer) {
        self.init(key: key.readableBytesView)
    }

    /// The slot of `key`'s UTF-8 bytes.
    public init(key: String) {
        self.init(key: key.utf8)
    }

    public var description: String { String(self.rawValue) }

    /// CRC16-XMODEM (polynomial 0x1021, initial 0), as in the cluster specification.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ Self.table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
