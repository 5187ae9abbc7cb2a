import FoundationEssentials

/// How session values become bytes in the store.
///
/// The default, ``JSONSessionCodec``, writes compact JSON: readable when debugging a store,
/// and stable across releases of the app as long as the `Codable` types are.
public protocol SessionCodec: Sendable {
    /// Encodes one value.
    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8]
    /// Decodes one value.
    func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value
}

/// Compact JSON (no whitespace, keys unsorted).
public struct JSONSessionCodec: SessionCodec {
    /// Creates the codec.
    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        // An integer, the commonest session value, is its digits: the bytes JSONEncoder writes,
        // without making one.
        if let integer = value as? Int { return Array(String(integer).utf8) }
        return Array(try JSONEncoder().encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        if Value.self == Int.self, let integer = Self.integer(bytes), let value = integer as? Value { return value }
        return try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// The integer `bytes` spell in plain decimal (what ``encode(_:)`` writes), or `nil`.
    private static func integer(_ bytes: [UInt8]) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self))
    }
}
