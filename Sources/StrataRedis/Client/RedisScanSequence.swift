public import NIOCore

/// The keys of a `SCAN`, page by page, as an `AsyncSequence`; in a cluster, every master's.
///
/// ```swift
/// for try await key in redis.scan(match: "session:*") { ... }
/// ```
///
/// As `SCAN` promises: a key present for the whole scan is returned at least once; one added
/// or removed meanwhile may or may not be; a key may come twice.
public struct RedisScanSequence: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    let client: RedisClient
    let match: String?
    let count: Int?
    let type: String?

    public func makeAsyncIterator() -> Iterator {
        Iterator(sequence: self)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let sequence: RedisScanSequence
        private var pools: [RedisNodePool]?
        private var cursor = "0"
        private var page: [ByteBuffer] = []
        private var pageIndex = 0
        private var finishedNode = false

        init(sequence: RedisScanSequence) {
            self.sequence = sequence
        }

        public mutating func next() async throws -> ByteBuffer? {
            if self.pools == nil { self.pools = try await self.sequence.client.scanPools() }
            while true {
                if self.pageIndex < self.page.count {
                    defer { self.pageIndex += 1 }
                    return self.page[self.pageIndex]
                }
                guard var pools = self.pools, let pool = pools.first else { return nil }
                if self.finishedNode {
                    pools.removeFirst()
                    self.pools = pools
                    self.cursor = "0"
                    self.finishedNode = false
                    continue
                }
                var command = RedisCommand("SCAN")
                command.append(self.cursor)
                if let match = self.sequence.match {
                    command.append("MATCH")
                    command.append(match)
                }
                if let count = self.sequence.count {
                    command.append("COUNT")
                    command.append(count)
                }
                if let type = self.sequence.type {
                    command.append("TYPE")
                    command.append(type)
                }
                let reply = try await pool.connection().send(command)
                if case .error(let message) = reply { throw RedisServerError(message) }
                guard let parts = reply.elements, parts.count == 2, let cursor = parts[0].string,
                    let keys = parts[1].elements
                else { throw RedisClient.unexpected(reply, "SCAN") }
                self.page = keys.compactMap(\.bytes)
                self.pageIndex = 0
                self.cursor = cursor
                if cursor == "0" { self.finishedNode = true }
            }
        }
    }
}

extension RedisClient {
    /// `SCAN` with `MATCH`, `COUNT` and `TYPE`, over every master in a cluster.
    public func scan(match: String? = nil, count: Int? = nil, type: String? = nil) -> RedisScanSequence {
        RedisScanSequence(client: self, match: match, count: count, type: type)
    }
}
