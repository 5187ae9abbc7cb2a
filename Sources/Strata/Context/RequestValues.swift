import Synchronization

/// A key for a value stored in ``RequestValues``.
///
/// ```swift
/// enum CurrentUserKey: RequestValueKey { typealias Value = User }
/// context.values[CurrentUserKey.self] = user
/// ```
public protocol RequestValueKey {
    /// The type of value stored under this key.
    associatedtype Value: Sendable
}

/// Request-scoped values keyed by type, shared by every copy of a context.
///
/// A middleware that loads something for the request (a session, the authenticated user, route
/// parameters) stores it here; the handler and later middlewares read and change the same value.
/// Safe to use from several tasks at once.
public final class RequestValues: Sendable {
    private let storage: Mutex<[ObjectIdentifier: any Sendable]>

    /// Creates an empty set of values.
    public init() {
        self.storage = Mutex([:])
    }

    /// The value stored under `key`, or `nil`.
    public subscript<Key: RequestValueKey>(key: Key.Type) -> Key.Value? {
        get {
            self.storage.withLock { $0[ObjectIdentifier(key)] as? Key.Value }
        }
        set {
            self.storage.withLock { $0[ObjectIdentifier(key)] = newValue }
        }
    }

    /// Changes the value under `key` in place, atomically with respect to other tasks.
    ///
    /// - Returns: What `body` returns.
    public func modify<Key: RequestValueKey, Result>(
        _ key: Key.Type,
        _ body: (inout Key.Value?) throws -> Result
    ) rethrows -> Result {
        try self.storage.withLock { storage in
            var value = storage[ObjectIdentifier(key)] as? Key.Value
            defer { storage[ObjectIdentifier(key)] = value }
            return try body(&value)
        }
    }
}
