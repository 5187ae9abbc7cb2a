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
        Array(try JSONEncoder().encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
