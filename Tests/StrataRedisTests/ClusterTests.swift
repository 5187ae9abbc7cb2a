import Foundation
import NIOCore
import StrataRedis
import StrataTestSupport
import Testing

/// The 3-master cluster `scripts/test.sh` starts.
@Suite(.serialized) struct ClusterTests {
    @Test func keysSpreadOverTheThreeMastersAndHashTagsStayTogether() async throws {
        try await RedisTestEnvironment.withClusterClient { redis in
            let prefix = RedisTestEnvironment.uniquePrefix()
            for index in 0..<300 { try await redis.set(RedisKey("\(prefix):\(index)"), to: "\(index)") }
            for index in 0..<300 { #expect(try await redis.getString(RedisKey("\(prefix):\(index)")) == "\(index)") }
            // Each master holds some of them.
            var perNode: [Int] = []
            for url in try RedisTestEnvironment.clusterURLs() {
                try await RedisTestEnvironment.withClient(url: url) { node in
                    perNode.append(try await node.send("DBSIZE").int ?? 0)
                }
            }
            #expect(perNode.count == 3 && perNode.allSatisfy { $0 > 0 }, "\(perNode)")
            // Multi-key calls in one slot work; across slots, CROSSSLOT is a typed error.
            let tag = "{\(prefix)}"
            try await redis.set(RedisKey("\(tag):a"), to: "1")
            try await redis.set(RedisKey("\(tag):b"), to: "2")
            #expect(try await redis.delete(RedisKey("\(tag):a"), RedisKey("\(tag):b")) == 2)
            do {
                try await redis.delete(RedisKey("\(prefix):1"), RedisKey("\(prefix):2"))
                Issue.record("keys in two slots should be refused")
            } catch let error as RedisServerError {
                #expect(error.isCrossSlot)
            }
            let script = RedisScript(
                "return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])")
            #expect(
                try await redis.run(script, keys: [RedisKey("\(tag):x"), RedisKey("\(tag):y")], arguments: [3])
                    == .integer(6))
            // SCAN visits every master.
            var scanned = 0
            for try await _ in redis.scan(match: "\(prefix):*", count: 100) { scanned += 1 }
            #expect(scanned == 300)
            for index in 0..<300 { try await redis.delete(RedisKey("\(prefix):\(index)")) }
            try await redis.delete(RedisKey("\(tag):x"), RedisKey("\(tag):y"))
        }
    }

    @Test func aMigratingSlotIsFollowedThroughASKThenMOVED() async throws {
        let urls = try RedisTestEnvironment.clusterURLs()
        let ports = urls.compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }
        try await RedisTestEnvironment.withClusterClient { redis in
            let key = RedisKey(RedisTestEnvironment.uniquePrefix() + ":migrating")
            let slot = Int(key.slot.rawValue)
            try await redis.set(key, to: "before")
            // The owner is the node that has the key (asked without redirects); any other is the target.
            var source = -1
            var ids: [Int: String] = [:]
            for port in ports {
                ids[port] = try await RedisServerProcess.cli(port: port, ["CLUSTER", "MYID"]).trimmingCharacters(
                    in: .whitespacesAndNewlines)
                let probe = try await RedisServerProcess.cli(port: port, ["GET", "\(key)"])
                if probe.trimmingCharacters(in: .whitespacesAndNewlines) == "before" { source = port }
            }
            let target = try #require(ports.first { $0 != source && source != -1 })
            let sourceID = try #require(ids[source])
            let targetID = try #require(ids[target])
            // IMPORTING on the target, MIGRATING on the source; move this key only.
            _ = try await RedisServerProcess.cli(
                port: target, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID])
            _ = try await RedisServerProcess.cli(
                port: source, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID])
            _ = try await RedisServerProcess.cli(
                port: source, ["MIGRATE", "127.0.0.1", "\(target)", "\(key)", "0", "5000"])
            // The key now lives on the target while the slot is still the source's: ASK.
            #expect(try await redis.getString(key) == "before")
            try await redis.set(key, to: "during")
            // Written through ASK on the target: the source does not have it.
            #expect(try await RedisServerProcess.cli(port: source, ["EXISTS", "\(key)"]).contains("0"))
            // Finish the migration: the source now answers MOVED, and the client follows.
            for port in ports {
                _ = try await RedisServerProcess.cli(port: port, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID])
            }
            #expect(try await redis.getString(key) == "during")
            try await redis.set(key, to: "after")
            #expect(try await redis.getString(key) == "after")
            // Move it back so the cluster is as it was.
            _ = try await RedisServerProcess.cli(
                port: source, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", targetID])
            _ = try await RedisServerProcess.cli(
                port: target, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", sourceID])
            _ = try await RedisServerProcess.cli(
                port: target, ["MIGRATE", "127.0.0.1", "\(source)", "\(key)", "0", "5000"])
            for port in ports {
                _ = try await RedisServerProcess.cli(port: port, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", sourceID])
            }
            #expect(try await redis.getString(key) == "after")
            try await redis.delete(key)
        }
    }
}
