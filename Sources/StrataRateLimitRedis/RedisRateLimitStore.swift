public import Strata
public import StrataRateLimit
public import StrataRedis

/// Quotas in Redis (or Valkey, or a Redis Cluster), shared by every instance of an app, and
/// exact across them.
///
/// - **One script per decision.** Every check of a request is decided and spent by one Lua
///   script, run with `EVALSHA` (one round trip), so N instances admit exactly the limit.
/// - **Redis's clock.** By default the script reads the time with `TIME`, so instances whose
///   clocks disagree still count the same. ``TimeSource/caller(_:)`` sends the caller's clock
///   instead, for deployments that forbid `TIME` in scripts; then clock skew between instances
///   shifts their view of every quota by the skew.
/// - **Cluster.** A key is `<prefix>:{<who>}:<policy>`: the hash tag is the client's key, so
///   every policy of one client lives in one slot and is decided by one script. Policies keyed
///   by different things (an address and a user) live in different slots; their scripts run one
///   after the other, and the units a later refusal makes moot are given back.
/// - **Bounded waits.** A decision that takes longer than `timeout` fails with
///   ``RateLimitStoreError/timedOut(_:)``, and the middleware's failure mode decides.
/// - **Native expiry.** Each key expires when its state would be the same as no state.
public struct RedisRateLimitStore: RateLimitStore {
    /// Where the current time comes from.
    public enum TimeSource: Sendable {
        /// `TIME` inside the script: one clock for every instance (the default).
        case redisServer
        /// The caller's clock, sent with each decision; instances' skew becomes quota error.
        case caller(any WallClock)
    }

    /// The client the store talks through.
    public let client: RedisClient
    /// What every key starts with.
    public let keyPrefix: String
    /// The longest a decision may take.
    public let timeout: Duration
    /// Where the time comes from.
    public let timeSource: TimeSource

    /// Creates a store on `client`.
    ///
    /// - Parameters:
    ///   - client: A client for a standalone server or a cluster.
    ///   - keyPrefix: What every key starts with.
    ///   - timeout: The longest a decision may take (default 250 ms).
    ///   - timeSource: Redis's clock (default) or the caller's.
    public init(
        client: RedisClient, keyPrefix: String = "strata:ratelimit", timeout: Duration = .milliseconds(250),
        timeSource: TimeSource = .redisServer
    ) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.timeout = timeout
        self.timeSource = timeSource
    }

    /// The Redis key of `key`'s state under `limits`.
    public func redisKey(_ limits: QuotaLimits, key: RateLimitKey) -> RedisKey {
        RedisKey("\(self.keyPrefix):{\(key.description)}:\(limits.name)")
    }

    // MARK: RateLimitStore

    public func acquire(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome] {
        try await self.bounded {
            var outcomes: [QuotaOutcome] = Array(
                repeating: QuotaOutcome(allowed: true, remaining: 0, reset: 0, retryAfter: 0), count: checks.count)
            var spent: [QuotaCheck] = []
            for group in self.groups(checks) {
                let part = try await self.run(.acquire, group.map { checks[$0] }, cost: cost)
                for (position, index) in group.enumerated() { outcomes[index] = part[position] }
                let refused = zip(group, part).contains { index, outcome in !outcome.allowed && !checks[index].shadow }
                if refused {
                    if !spent.isEmpty { _ = try await self.run(.refund, spent, cost: cost) }
                    return outcomes
                }
                spent += zip(group, part).filter { $0.1.allowed }.map { checks[$0.0] }
            }
            return outcomes
        }
    }

    public func refund(_ checks: [QuotaCheck], cost: Int) async throws {
        try await self.bounded {
            for group in self.groups(checks) { _ = try await self.run(.refund, group.map { checks[$0] }, cost: cost) }
        }
    }

    public func peek(_ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome] {
        try await self.bounded {
            var outcomes: [QuotaOutcome] = Array(
                repeating: QuotaOutcome(allowed: true, remaining: 0, reset: 0, retryAfter: 0), count: checks.count)
            for group in self.groups(checks) {
                let part = try await self.run(.peek, group.map { checks[$0] }, cost: cost)
                for (position, index) in group.enumerated() { outcomes[index] = part[position] }
            }
            return outcomes
        }
    }

    public func reset(_ limits: QuotaLimits, key: RateLimitKey) async throws {
        try await self.bounded { _ = try await self.client.delete(self.redisKey(limits, key: key)) }
    }

    // MARK: Helpers

    enum Mode: Int {
        case acquire = 1
        case refund = 2
        case peek = 3
    }

    /// Indices of the checks, one group per script: all of them on a standalone server, one
    /// group per client key (one hash slot) on a cluster.
    func groups(_ checks: [QuotaCheck]) -> [[Int]] {
        guard case .cluster = self.client.configuration.mode else { return [Array(checks.indices)] }
        var groups: [[Int]] = []
        var tags: [RateLimitKey] = []
        for (index, check) in checks.enumerated() {
            if let group = tags.firstIndex(of: check.key) {
                groups[group].append(index)
            } else {
                tags.append(check.key)
                groups.append([index])
            }
        }
        return groups
    }

    private func run(_ mode: Mode, _ checks: [QuotaCheck], cost: Int) async throws -> [QuotaOutcome] {
        guard !checks.isEmpty else { return [] }
        var arguments: [any RedisArgument] = [mode.rawValue, cost]
        switch self.timeSource {
        case .redisServer: arguments.append(0)
        case .caller(let clock): arguments.append(Int(clock.now().nanosecondsSince1970 / 1000))
        }
        for check in checks {
            let limits = check.limits
            switch limits.algorithm {
            case .gcra:
                arguments.append(1)
                arguments.append(Self.microseconds(limits.emissionInterval))
                arguments.append(Self.microseconds(limits.burstTolerance))
            case .slidingWindow:
                arguments.append(2)
                arguments.append(Self.microseconds(limits.emissionInterval))
                arguments.append(limits.limit)
            }
            arguments.append(check.shadow ? 1 : 0)
        }
        let keys = checks.map { self.redisKey($0.limits, key: $0.key) }
        let reply = try await self.client.run(Self.script, keys: keys, arguments: arguments)
        guard mode != .refund else { return [] }
        guard let values = reply.elements?.compactMap(\.int), values.count == checks.count * 4 else {
            throw RateLimitStoreError.unexpectedReply(String(describing: reply))
        }
        return checks.indices.map { index in
            let base = index * 4
            return QuotaOutcome(
                allowed: values[base] == 1, remaining: values[base + 1], reset: Int64(values[base + 2]) * 1000,
                retryAfter: Int64(values[base + 3]) * 1000)
        }
    }

    static func microseconds(_ nanoseconds: Int64) -> String {
        // Fractions of a microsecond are kept: a GCRA interval of 1/3 ms is not rounded.
        let whole = nanoseconds / 1000
        let fraction = nanoseconds % 1000
        return fraction == 0 ? String(whole) : "\(whole).\(String(fraction + 1000).dropFirst())"
    }

    /// Runs `body`, failing with ``RateLimitStoreError/timedOut(_:)`` after `timeout`.
    private func bounded<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result
    {
        let limit = self.timeout
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw RateLimitStoreError.timedOut(limit)
            }
            return result
        }
    }

    /// The decision script. Times are microseconds; `ARGV`: mode (1 acquire, 2 refund,
    /// 3 peek), cost, now (0: read `TIME`), then per key: algorithm (1 GCRA, 2 sliding
    /// window), interval (GCRA: per unit; window: the window), tolerance (GCRA) or limit
    /// (window), shadow (1/0). Returns, per key: allowed, remaining, reset, retry-after.
    static let script = RedisScript(
        """
        local mode = tonumber(ARGV[1])
        local cost = tonumber(ARGV[2])
        local now = tonumber(ARGV[3])
        if now == 0 then
          local time = redis.call('TIME')
          now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        end
        local results = {}
        local writes = {}
        local refused = false
        for i = 1, #KEYS do
          local base = 3 + (i - 1) * 4
          local algorithm = tonumber(ARGV[base + 1])
          local interval = tonumber(ARGV[base + 2])
          local bound = tonumber(ARGV[base + 3])
          local shadow = ARGV[base + 4] == '1'
          local allowed, remaining, reset, retry = 1, 0, 0, 0
          if algorithm == 1 then
            local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
            if tat < now then tat = now end
            if mode == 2 then
              local back = tat - cost * interval
              if back < now then back = now end
              writes[#writes + 1] = {i, 1, back}
            else
              local nexttat = tat + cost * interval
              if cost * interval > bound then
                allowed = 0
                remaining = math.floor(math.max(0, bound - (tat - now)) / interval)
                retry = math.ceil(bound)
                reset = retry
              elseif nexttat - now > bound then
                allowed = 0
                remaining = math.floor(math.max(0, bound - (tat - now)) / interval)
                retry = math.ceil(nexttat - bound - now)
                reset = retry
              else
                remaining = math.floor((bound - (nexttat - now)) / interval)
                reset = math.ceil(nexttat - now)
                writes[#writes + 1] = {i, 1, nexttat}
              end
            end
          else
            local index = math.floor(now / interval)
            local elapsed = now - index * interval
            local state = redis.call('HMGET', KEYS[i], 'a', 'b', 'c')
            local window = tonumber(state[1] or '-2')
            local current, previous = 0, 0
            if window == index then
              current = tonumber(state[2] or '0')
              previous = tonumber(state[3] or '0')
            elseif window == index - 1 then
              previous = tonumber(state[2] or '0')
            end
            if mode == 2 then
              if window == index then
                writes[#writes + 1] = {i, 2, index, math.max(0, current - cost), previous}
              end
            else
              local estimate = previous * (interval - elapsed) / interval + current
              local left = interval - elapsed
              if estimate + cost <= bound then
                remaining = math.floor(bound - estimate - cost)
                reset = math.ceil(left)
                writes[#writes + 1] = {i, 2, index, current + cost, previous}
              else
                allowed = 0
                remaining = math.max(0, math.floor(bound - estimate))
                local room = bound - current - cost
                if cost > bound then
                  retry = left + interval
                elseif room >= 0 and previous > 0 then
                  retry = math.max(1, math.ceil(left - room * interval / previous))
                elseif current > 0 then
                  retry = math.max(1, left + math.max(0, math.ceil(interval - (bound - cost) * interval / current)))
                else
                  retry = math.max(1, left)
                end
                reset = retry
              end
            end
          end
          if allowed == 0 and not shadow then refused = true end
          results[#results + 1] = allowed
          results[#results + 1] = remaining
          results[#results + 1] = reset
          results[#results + 1] = retry
        end
        if mode == 3 or refused then return results end
        for _, write in ipairs(writes) do
          local key = KEYS[write[1]]
          if write[2] == 1 then
            local ttl = math.ceil((write[3] - now) / 1000) + 1
            redis.call('SET', key, string.format('%.3f', write[3]), 'PX', ttl)
          else
            local interval = tonumber(ARGV[3 + (write[1] - 1) * 4 + 2])
            redis.call('HSET', key, 'a', string.format('%d', write[3]), 'b', string.format('%d', write[4]), 'c', string.format('%d', write[5]))
            redis.call('PEXPIRE', key, math.ceil(2 * interval / 1000) + 1000)
          end
        end
        return results
        """
    )
}
