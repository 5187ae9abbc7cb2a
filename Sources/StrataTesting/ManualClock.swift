public import Strata
import Synchronization

/// A wall clock that moves only when a test moves it.
///
/// ```swift
/// let clock = ManualClock(now: Timestamp(secondsSince1970: 1_700_000_000))
/// clock.advance(by: .seconds(61))
/// ```
public final class ManualClock: WallClock {
    private let current: Mutex<Timestamp>

    /// Creates a clock showing `now`.
    public init(now: Timestamp = Timestamp(secondsSince1970: 1_700_000_000)) {
        self.current = Mutex(now)
    }

    public func now() -> Timestamp {
        self.current.withLock { $0 }
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        self.current.withLock { $0 = $0 + duration }
    }
}
