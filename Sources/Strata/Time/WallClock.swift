#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in wall-clock time, in nanoseconds since 1970-01-01T00:00:00Z.
public struct Timestamp: Sendable, Hashable, Comparable {
    /// Nanoseconds since the Unix epoch.
    public var nanosecondsSince1970: Int64

    /// Creates a timestamp from nanoseconds since the Unix epoch.
    @inlinable
    public init(nanosecondsSince1970: Int64) {
        self.nanosecondsSince1970 = nanosecondsSince1970
    }

    /// Creates a timestamp from whole seconds since the Unix epoch.
    @inlinable
    public init(secondsSince1970: Int64) {
        self.nanosecondsSince1970 = secondsSince1970 * 1_000_000_000
    }

    /// Whole seconds since the Unix epoch, rounded down.
    @inlinable
    public var secondsSince1970: Int64 {
        self.nanosecondsSince1970 >= 0
            ? self.nanosecondsSince1970 / 1_000_000_000
            : (self.nanosecondsSince1970 - 999_999_999) / 1_000_000_000
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSince1970 < rhs.nanosecondsSince1970
    }

    /// The timestamp `duration` later.
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (seconds, attoseconds) = rhs.components
        return Timestamp(
            nanosecondsSince1970: lhs.nanosecondsSince1970 + seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The time from `rhs` to `lhs`.
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .nanoseconds(lhs.nanosecondsSince1970 - rhs.nanosecondsSince1970)
    }
}

/// The seam through which time-based logic (expiry, rate windows, cache ages) reads the time.
///
/// Production code uses ``SystemWallClock``; tests inject a clock they move by hand
/// (`ManualClock` in StrataTesting), so no test has to sleep.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSince1970: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
