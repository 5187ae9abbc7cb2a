import Synchronization

/// Makes concurrent misses for one key wait for the first one's origin response.
///
/// The first request for a key leads: it goes to the origin. Later ones wait, up to a number
/// and a time, and learn whether the leader stored a response (they then answer from the store)
/// or not (they go to the origin at once). A flight whose leader never reports, because its
/// client left before the body was sent, ends at the timeout, counted from its first waiter.
final class RequestCollapser: Sendable {
    enum Outcome: Sendable {
        /// The leader stored a response: look the key up again.
        case stored
        /// The leader's response was not stored: go to the origin.
        case notStored
        /// The leader took too long: go to the origin.
        case timedOut
    }

    enum Role: Sendable {
        case leader(Flight)
        /// Waited for a leader, which ended this way.
        case waited(Outcome)
        /// Too many waiters already: go to the origin without waiting.
        case alone
    }

    /// A leader's handle on its flight; ``finish(_:)`` ends it once.
    struct Flight: Sendable {
        let collapser: RequestCollapser
        let key: String
        let id: UInt64

        func finish(_ outcome: Outcome) {
            self.collapser.finish(key: self.key, id: self.id, outcome: outcome)
        }
    }

    private struct State {
        var flights: [String: FlightState] = [:]
        var nextID: UInt64 = 0
    }

    private struct FlightState {
        let id: UInt64
        var waiters: [CheckedContinuation<Outcome, Never>] = []
        var timer: Task<Void, Never>?
    }

    private let state = Mutex(State())
    let maximumWaiters: Int
    let timeout: Duration

    init(maximumWaiters: Int, timeout: Duration) {
        self.maximumWaiters = maximumWaiters
        self.timeout = timeout
    }

    /// Leads the flight for `key`, or waits for its leader.
    func join(_ key: String) async -> Role {
        enum Decision {
            case lead(UInt64)
            case wait
            case alone
        }
        let decision = self.state.withLock { state -> Decision in
            if let flight = state.flights[key] {
                return flight.waiters.count >= self.maximumWaiters ? .alone : .wait
            }
            state.nextID &+= 1
            state.flights[key] = FlightState(id: state.nextID)
            return .lead(state.nextID)
        }
        switch decision {
        case .lead(let id):
            return .leader(Flight(collapser: self, key: key, id: id))
        case .alone:
            return .alone
        case .wait:
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                enum Registration {
                    case first(UInt64)
                    case later
                    case ended
                }
                let registration = self.state.withLock { state -> Registration in
                    guard let flight = state.flights[key] else { return .ended }
                    state.flights[key]?.waiters.append(continuation)
                    return flight.waiters.isEmpty ? .first(flight.id) : .later
                }
                switch registration {
                case .first(let id):
                    // The first waiter starts the flight's timer: a flight nobody waits for
                    // (most misses) costs no task.
                    let timer = Task { [timeout] in
                        try? await Task.sleep(for: timeout)
                        if !Task.isCancelled { self.expire(key: key, id: id) }
                    }
                    let running = self.state.withLock { state -> Bool in
                        guard state.flights[key]?.id == id else { return false }
                        state.flights[key]?.timer = timer
                        return true
                    }
                    if !running { timer.cancel() }
                case .later:
                    break
                case .ended:
                    // The flight ended between the decision and now: its response is in the
                    // store or not.
                    continuation.resume(returning: .stored)
                }
            }
            return .waited(outcome)
        }
    }

    /// The number of requests waiting now, all keys together.
    var waiting: Int {
        self.state.withLock { $0.flights.values.reduce(0) { $0 + $1.waiters.count } }
    }

    private func finish(key: String, id: UInt64, outcome: Outcome) {
        let flight = self.state.withLock { state -> FlightState? in
            guard let flight = state.flights[key], flight.id == id else { return nil }
            state.flights[key] = nil
            return flight
        }
        guard let flight else { return }
        flight.timer?.cancel()
        for waiter in flight.waiters { waiter.resume(returning: outcome) }
    }

    private func expire(key: String, id: UInt64) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Outcome, Never>] in
            guard let flight = state.flights[key], flight.id == id else { return [] }
            state.flights[key] = nil
            return flight.waiters
        }
        for waiter in waiters { waiter.resume(returning: .timedOut) }
    }
}
