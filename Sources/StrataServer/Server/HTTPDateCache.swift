import Strata
import Synchronization

/// The `Date` field value, formatted once per second rather than once per response.
final class HTTPDateCache: Sendable {
    static let shared = HTTPDateCache()

    private let state = Mutex<(second: Int64, text: String)>((-1, ""))
    private let clock = SystemWallClock()

    var current: String {
        let second = self.clock.now().secondsSince1970
        return self.state.withLock { state in
            if state.second != second {
                state = (second, HTTPDate.format(secondsSince1970: second))
            }
            return state.text
        }
    }
}
