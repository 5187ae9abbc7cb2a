import Foundation
import NIOCore
import StrataRedis
import StrataTestSupport
import Testing

/// Every typed command against the real server, in RESP3 and in RESP2.
@Suite struct CommandTests {
    static let versions: [RedisConfiguration.ProtocolVersion] = [.resp3, .resp2]

    @Test(arguments: Self.versions)
    func stringsExpiryAndCounters(_ version: RedisConfiguration.ProtocolVersion) async throws {
        try await RedisTestEnvironment.withClient({ $0.protocolVersion = version }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            #expect(try await redis.get(key) == nil)
            #expect(try await redis.set(key, to: "one"))
            #expect(try await redis.getString(key) == "one")
            #expect(try await redis.set(key, to: "two", condition: .ifNotExists) == false)
            #expect(try await redis.getString(key) == "one")
            #expect(try await redis.set(key, to: "three", condition: .ifExists))
            #expect(try await redis.setReturningPrevious(key, to: "four").map { String(buffer: $0) } == "three")
            #expect(try await redis.ttl(key) == -1)
            #expect(try await redis.expire(key, after: .seconds(100)))
            #expect((1...100).contains(try await redis.ttl(key)))
            #expect(try await redis.expire(key, after: .milliseconds(90_500)))
            guard case .expires(let left) = try await redis.timeToLive(key) else {
                Issue.record("no TTL after PEXPIRE")
                return
            }
            #expect(left > .seconds(80) && left <= .milliseconds(90_500))
            #expect(try await redis.set(key, to: "five", expiration: .keepTTL))
            #expect(try await redis.ttl(key) > 0)
            #expect(try await redis.set(key, to: "six", expiration: .milliseconds(50_000)))
            #expect(try await redis.exists(key) == 1)
            #expect(try await redis.delete(key) == 1)
            #expect(try await redis.timeToLive(key) == .noKey)

            let counter = RedisKey(RedisTestEnvironment.uniquePrefix() + ":n")
            #expect(try await redis.incr(counter) == 1)
            #expect(try await redis.incr(counter, by: 41) == 42)
            #expect(try await redis.timeToLive(counter) == .noExpiry)
            try await redis.delete(counter)
            // A type error is a server error, not a crash.
            try await redis.hset(counter, field: "f", to: "v")
            await #expect(throws: RedisServerError.self) { try await redis.incr(counter) }
            do {
                _ = try await redis.incr(counter)
            } catch let error as RedisServerError {
                #expect(error.prefix == "WRONGTYPE")
            }
            try await redis.delete(counter)
        }
    }

    /// A command of more than nine words (a two-digit array header) and arguments of every
    /// header width reach the server intact.
    @Test func commandsWithTwoDigitHeadersArriveWhole() async throws {
        try await RedisTestEnvironment.withClient { redis in
            let key = RedisTestEnvironment.uniquePrefix()
            var push = RedisCommand("RPUSH", key: key)
            let values = (0..<12).map { "value-\($0)-0123456789" }
            for value in values { push.append(value) }
            #expect(try await redis.send(push).int == 12)
            var range = RedisCommand("LRANGE", key: key)
            range.append(0)
            range.append(-1)
            let stored = try await redis.send(range).elements?.compactMap(\.string)
            #expect(stored == values)
            try await redis.delete(RedisKey(key))

            // Bulk headers on each side of every power of ten, as bytes, strings and raw
            // arrays: a digit dropped or doubled desynchronises the server, or stores the
            // wrong length.
            for length in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 9999, 10000, 100_000] {
                let value = ByteBuffer(repeating: UInt8(ascii: "v"), count: length)
                let bytesKey = RedisKey("\(key):b\(length)")
                #expect(try await redis.set(bytesKey, to: value))
                #expect(try await redis.get(bytesKey) == value)
                var set = RedisCommand("SET", key: "\(key):s\(length)")
                set.append(String(repeating: "s", count: length))
                #expect(try await redis.send(set).string == "OK")
                #expect(try await redis.send("STRLEN", "\(key):s\(length)").int == length)
                var raw = RedisCommand("SET", key: "\(key):r\(length)")
                raw.append(bytes: [UInt8](repeating: 0x72, count: length))
                #expect(try await redis.send(raw).string == "OK")
                #expect(try await redis.send("STRLEN", "\(key):r\(length)").int == length)
                #expect(
                    try await redis.delete(bytesKey, RedisKey("\(key):s\(length)"), RedisKey("\(key):r\(length)")) == 3)
            }

            // The first key has a header of its own (written as it came, not encoded ahead).
            for length in [1, 9, 10, 11, 99, 100, 101, 1000, 10000] {
                let long = RedisKey(ByteBuffer(repeating: UInt8(ascii: "k"), count: length))
                #expect(try await redis.set(long, to: "\(length)"))
                #expect(try await redis.getString(long) == "\(length)")
                #expect(try await redis.delete(long) == 1)
            }

            // Routed by another key after it was started with one: the first key stays first.
            var routed = RedisCommand("SET", key: "\(key):first")
            routed.append("value")
            routed.route(by: ByteBuffer(string: "\(key):route"))
            #expect(routed.key == ByteBuffer(string: "\(key):route"))
            #expect(try await redis.send(routed).string == "OK")
            #expect(try await redis.getString(RedisKey("\(key):first")) == "value")
            #expect(try await redis.delete(RedisKey("\(key):first")) == 1)
        }
    }

    @Test(arguments: Self.versions)
    func hashes(_ version: RedisConfiguration.ProtocolVersion) async throws {
        try await RedisTestEnvironment.withClient({ $0.protocolVersion = version }) { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix())
            #expect(try await redis.hset(key, fields: [("a", "1"), ("b", ByteBuffer(bytes: [0, 255]))]) == 2)
            #expect(try await redis.hget(key, field: "a").map { String(buffer: $0) } == "1")
            #expect(try await redis.hget(key, field: "none") == nil)
            #expect(try await redis.hincr(key, field: "a", by: 9) == 10)
            let all = try await redis.hgetAll(key)
            #expect(all.count == 2)
            #expect(all["a"].map { String(buffer: $0) } == "10")
            #expect(all["b"].map { Array($0.readableBytesView) } == [0, 255])
            #expect(try await redis.hdel(key, fields: "a", "zzz") == 1)
            #expect(try await redis.hgetAll(RedisKey(RedisTestEnvironment.uniquePrefix())).isEmpty)
            try await redis.delete(key)
        }
    }

    @Test(arguments: Self.versions)
    func keysAndValuesAreBinarySafe(_ version: RedisConfiguration.ProtocolVersion) async throws {
        try await RedisTestEnvironment.withClient({ $0.protocolVersion = version }) { redis in
            let allBytes = (0...255).map { UInt8($0) }
            let key = RedisKey(Array(RedisTestEnvironment.uniquePrefix().utf8) + allBytes)
            try await redis.set(key, to: ByteBuffer(bytes: allBytes + allBytes.reversed()))
            let back = try #require(try await redis.get(key))
            #expect(Array(back.readableBytesView) == allBytes + allBytes.reversed())

            // 10 MiB of every byte value in a shifting order, built from 64 KiB blocks.
            var big = ByteBuffer()
            for block in 0..<160 {
                big.writeBytes((0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ block) })
            }
            let bigKey = RedisKey(RedisTestEnvironment.uniquePrefix() + ":big")
            try await redis.set(bigKey, to: big)
            let bigBack = try #require(try await redis.get(bigKey))
            let same = bigBack == big  // outside #expect: no diff of 10 MiB
            #expect(same, "10 MiB round trip: \(bigBack.readableBytes) bytes")
            try await redis.delete(key, bigKey)
        }
    }

    @Test(arguments: Self.versions)
    func rawCommandsScriptsTransactionsAndScan(_ version: RedisConfiguration.ProtocolVersion) async throws {
        try await RedisTestEnvironment.withClient({ $0.protocolVersion = version }) { redis in
            let prefix = RedisTestEnvironment.uniquePrefix()
            #expect(try await redis.send("ECHO", "hi").string == "hi")
            try await redis.ping()

            // A script: EVALSHA misses once (NOSCRIPT), EVAL loads it, EVALSHA hits after.
            let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) .. ':' .. ARGV[2]")
            try await redis.send("SCRIPT", "FLUSH")
            #expect(try await redis.run(script, keys: [RedisKey("\(prefix):s")], arguments: [5, "x"]).string == "5:x")
            #expect(try await redis.send("SCRIPT", "EXISTS", script.sha1).elements == [.integer(1)])
            #expect(try await redis.run(script, keys: [RedisKey("\(prefix):s")], arguments: [2, "y"]).string == "7:y")
            await #expect(throws: RedisServerError.self) {
                try await redis.run(RedisScript("return redis.call('NOPE')"))
            }

            // MULTI/EXEC on a connection of its own; an error result stays a value.
            let results = try await redis.transaction([
                RedisCommand("SET", key: RedisKey("\(prefix):t"), "1"),
                RedisCommand("INCR", key: RedisKey("\(prefix):t")),
                RedisCommand("HSET", key: RedisKey("\(prefix):t"), "f", "v"),
            ])
            #expect(results.count == 3)
            #expect(results[1] == .integer(2))
            if case .error = results[2] {} else { Issue.record("WRONGTYPE inside EXEC should be a value") }
            await #expect(throws: RedisServerError.self) {
                try await redis.transaction([RedisCommand("NOSUCHCOMMAND")])
            }

            // SCAN as an AsyncSequence.
            for index in 0..<250 { try await redis.set(RedisKey("\(prefix):scan:\(index)"), to: "\(index)") }
            var seen = Set<String>()
            for try await key in redis.scan(match: "\(prefix):scan:*", count: 20) { seen.insert(String(buffer: key)) }
            #expect(seen.count == 250)
            for index in 0..<250 { try await redis.delete(RedisKey("\(prefix):scan:\(index)")) }
            try await redis.delete(RedisKey("\(prefix):s"), RedisKey("\(prefix):t"))
        }
    }

    @Test(arguments: Self.versions)
    func publishAndSubscribe(_ version: RedisConfiguration.ProtocolVersion) async throws {
        try await RedisTestEnvironment.withClient({ $0.protocolVersion = version }) { redis in
            let channel = RedisTestEnvironment.uniquePrefix()
            let subscription = try await redis.subscribe(to: [channel, channel + ":other"])
            let patterns = try await redis.psubscribe(to: [channel + ":*"])
            #expect(try await redis.publish("one", to: channel) == 1)
            #expect(try await redis.publish(ByteBuffer(bytes: [0, 1, 2]), to: channel + ":other") == 2)
            var iterator = subscription.makeAsyncIterator()
            let first = try #require(try await iterator.next())
            #expect(first.channel == channel && String(buffer: first.payload) == "one" && first.pattern == nil)
            let second = try #require(try await iterator.next())
            #expect(second.channel == channel + ":other" && Array(second.payload.readableBytesView) == [0, 1, 2])
            var patternIterator = patterns.makeAsyncIterator()
            let matched = try #require(try await patternIterator.next())
            #expect(matched.pattern == channel + ":*" && matched.channel == channel + ":other")
            subscription.close()
            patterns.close()
            // Closed: the sequence ends with connectionClosed.
            do {
                while try await iterator.next() != nil {}
                Issue.record("a closed subscription should end with an error")
            } catch let error as RedisClientError {
                #expect(error.code == .connectionClosed)
            }
            #expect(try await redis.publish("nobody", to: channel) == 0)
        }
    }

    @Test func authenticationAndDatabaseSelection() async throws {
        try await RedisServerProcess.with { server in
            _ = try await RedisServerProcess.cli(port: server.port, ["CONFIG", "SET", "requirepass", "s3cret"])
            _ = try await RedisServerProcess.cli(
                port: server.port, ["-a", "s3cret", "ACL", "SETUSER", "app", "on", ">apppass", "~*", "+@all"])
            for version in Self.versions {
                // Wrong password: a typed connect failure that does not repeat the secret.
                // The acquire timeout is long so that the handshake's refusal, not a loaded
                // machine's slow connect, is what the caller sees.
                try await RedisTestEnvironment.withClient(
                    {
                        $0.protocolVersion = version; $0.acquireTimeout = .seconds(60)
                    },
                    url: "redis://:wrong@127.0.0.1:\(server.port)", connected: false
                ) { redis in
                    do {
                        try await redis.ping()
                        Issue.record("a wrong password should fail")
                    } catch let error as RedisClientError {
                        #expect(error.code == .connectionFailed)
                        #expect(!error.description.contains("wrong"), "\(error)")
                    }
                }
                try await RedisTestEnvironment.withClient(
                    { $0.protocolVersion = version }, url: "redis://:s3cret@127.0.0.1:\(server.port)/3"
                ) { redis in
                    try await redis.set("db-check", to: "three")
                    #expect(try await redis.send("CLIENT", "INFO").string?.contains("db=3") == true)
                    #expect(try await redis.send("CLIENT", "INFO").string?.contains("name=strata") == true)
                }
                try await RedisTestEnvironment.withClient(
                    { $0.protocolVersion = version }, url: "redis://app:apppass@127.0.0.1:\(server.port)"
                ) { redis in
                    let whoami = try await redis.send("ACL", "WHOAMI").string
                    #expect(whoami == "app")
                }
            }
        }
    }
}
