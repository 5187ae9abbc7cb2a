public import NIOCore
import Strata

/// A Lua script run with `EVALSHA`, loaded by `EVAL` only when the server does not know it.
///
/// The digest is computed once, so a script costs one round trip however often it runs:
/// `EVALSHA` first, and on `NOSCRIPT` (a restarted server, a new cluster node) one `EVAL`,
/// which also caches it there.
///
/// ```swift
/// let increment = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
/// let value = try await redis.run(increment, keys: ["counter"], arguments: [5])
/// ```
///
/// In a cluster every key of one call must live in one slot: give them a common hash tag
/// (`{user:1}:a`, `{user:1}:b`), or the server answers `CROSSSLOT`
/// (``RedisServerError/isCrossSlot``).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 the server names it by.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
    }
}

extension RedisClient {
    /// Runs `script` with `EVALSHA`, falling back to `EVAL` once if the server lacks it.
    ///
    /// - Throws: ``RedisServerError`` for a script error (or `CROSSSLOT`).
    @discardableResult
    public func run(_ script: RedisScript, keys: [RedisKey] = [], arguments: [any RedisArgument] = []) async throws
        -> RESPValue
    {
        func command(_ name: String, _ body: String) -> RedisCommand {
            var command = RedisCommand(name)
            command.append(body)
            command.append(keys.count)
            for key in keys { command.append(key) }
            for argument in arguments { argument.append(to: &command) }
            if let first = keys.first { command.route(by: first.bytes) }
            return command
        }
        do {
            return try await self.send(command("EVALSHA", script.sha1))
        } catch let error as RedisServerError where error.prefix == "NOSCRIPT" {
            return try await self.send(command("EVAL", script.source))
        }
    }
}
