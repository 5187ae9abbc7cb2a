/// A typed key for one session value.
///
/// Keys are types, so a misspelt key does not compile and a value always reads back as the
/// type it was written as:
///
/// ```swift
/// enum VisitCount: SessionKey {
///     typealias Value = Int
///     static let name = "visits"
/// }
/// let visits = try await context.session.value(for: VisitCount.self) ?? 0
/// try context.session.set(VisitCount.self, to: visits + 1)
/// ```
///
/// A whole app's session can also be one `Codable` struct under a single key.
public protocol SessionKey {
    /// The value's type.
    associatedtype Value: Codable & Sendable
    /// The name the value is stored under; unique within the app's session.
    static var name: String { get }
}

/// The flash message (``Session/flash(_:)``): read once.
enum FlashKey: SessionKey {
    typealias Value = String
    static let name = "_flash"
}
