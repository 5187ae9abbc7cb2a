public import NIOCore

/// Where the client connects, how it authenticates, and its limits and timeouts.
///
/// Validated at init: a URL that does not parse, a pool with `min > max`, a zero timeout, all
/// fail with a ``RedisConfigurationError`` that says what to change.
///
/// ```swift
/// let configuration = try RedisConfiguration(url: "redis://app:secret@127.0.0.1:6379/0")
/// let cluster = try RedisConfiguration(clusterNodes: ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
/// ```
public struct RedisConfiguration: Sendable {
    /// Where one server listens.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): "unix:\(path)"
            }
        }
    }

    /// The RESP version to speak.
    public enum ProtocolVersion: Sendable, Hashable {
        /// `HELLO 3`; servers that refuse it (Redis before 6) are spoken to in RESP2.
        case resp3
        /// RESP2 only (`AUTH`, `CLIENT SETNAME`, `SELECT` instead of `HELLO`).
        case resp2
    }

    /// A standalone server, or the seed nodes of a Redis Cluster.
    public enum Mode: Sendable, Hashable {
        case standalone(Endpoint)
        case cluster(seeds: [Endpoint])
    }

    public var mode: Mode
    /// `AUTH` user name (Redis 6 ACL); `nil` for the `default` user.
    public var username: String?
    /// `AUTH` password; never logged.
    public var password: String?
    /// The database `SELECT`ed on each connection (standalone only; a cluster has only 0).
    public var database: Int = 0
    /// Sent as `SETNAME`, so `CLIENT LIST` shows who is connected.
    public var clientName: String? = "strata"
    public var protocolVersion: ProtocolVersion = .resp3

    /// Connections per node shared by pipelined commands: at least `minConnections` are kept
    /// open, at most `maxConnections` opened.
    public var minConnections: Int = 1
    public var maxConnections: Int = 8
    /// Commands written and not yet answered on one connection, past which a command waits
    /// for a free slot (or a new connection).
    public var maxPipelinedCommands: Int = 4096
    /// Unanswered commands on every open shared connection before another is opened. One
    /// deep pipeline beats several shallow ones (fewer, larger writes on both sides; measured
    /// in `Docs/Benchmarks.md`); lower it for slow commands or large values, where one reply
    /// holds up those behind it.
    public var pipelineDepthToGrow: Int = 1024
    /// Commands that may wait for a connection at once; one more fails at once with
    /// ``RedisClientError/Code/poolExhausted``.
    public var maxWaiters: Int = 16384
    /// How long a command may wait for a connection.
    public var acquireTimeout: Duration = .seconds(5)
    /// Connections beyond `minConnections` that carried nothing for this long are closed.
    public var idleTimeout: Duration = .seconds(60)
    /// TCP connect plus handshake.
    public var connectTimeout: Duration = .seconds(5)
    /// From a command being written to its reply. Blocking commands given their own timeout
    /// (`BLPOP key 30`) get that much more.
    public var commandTimeout: Duration = .seconds(5)
    /// The first reconnect waits this long (with jitter), doubling up to `maxReconnectDelay`.
    public var reconnectDelay: Duration = .milliseconds(50)
    public var maxReconnectDelay: Duration = .seconds(5)
    /// How often a `MOVED`/`ASK`/`TRYAGAIN`/`CLUSTERDOWN`/`LOADING` answer (each proof that
    /// the command did not run) is retried before giving up.
    public var maxRedirects: Int = 5
    /// The first retry of `TRYAGAIN`/`CLUSTERDOWN`/`LOADING` waits this long, doubling.
    public var retryDelay: Duration = .milliseconds(10)
    /// Bounds on one reply.
    public var parserLimits = RESPParserLimits()

    /// A standalone server.
    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil) throws(RedisConfigurationError) {
        self.mode = .standalone(endpoint)
        self.username = username
        self.password = password
        try self.validate()
    }

    /// A standalone server from `redis://[user[:password]@]host[:port][/db]`,
    /// `rediss://` (refused: no TLS here) or `unix:///path/to/socket[?db=N]`.
    public init(url: String) throws(RedisConfigurationError) {
        let parsed = try RedisURL(url)
        self.mode = .standalone(parsed.endpoint)
        self.username = parsed.username
        self.password = parsed.password
        self.database = parsed.database
        try self.validate()
    }

    /// A Redis Cluster, from one or more of its nodes' URLs (credentials from the first).
    public init(clusterNodes urls: [String]) throws(RedisConfigurationError) {
        guard let first = urls.first else {
            throw RedisConfigurationError(problems: ["a cluster needs at least one seed node URL"])
        }
        var seeds: [Endpoint] = []
        for url in urls {
            let parsed = try RedisURL(url)
            guard parsed.database == 0 else {
                throw RedisConfigurationError(problems: [
                    "a Redis Cluster has only database 0: remove the /db from the URLs"
                ])
            }
            seeds.append(parsed.endpoint)
        }
        let parsed = try RedisURL(first)
        self.mode = .cluster(seeds: seeds)
        self.username = parsed.username
        self.password = parsed.password
        try self.validate()
    }

    /// Checks the whole configuration; every problem is reported together.
    public func validate() throws(RedisConfigurationError) {
        var problems: [String] = []
        if self.minConnections < 0 { problems.append("minConnections must be 0 or more") }
        if self.maxConnections < 1 { problems.append("maxConnections must be at least 1") }
        if self.minConnections > self.maxConnections {
            problems.append("minConnections (\(self.minConnections)) exceeds maxConnections (\(self.maxConnections))")
        }
        if self.maxPipelinedCommands < 1 { problems.append("maxPipelinedCommands must be at least 1") }
        if self.pipelineDepthToGrow < 1 { problems.append("pipelineDepthToGrow must be at least 1") }
        if self.maxWaiters < 1 {
            problems.append("maxWaiters must be at least 1 (the first command waits for the first connection)")
        }
        for (name, value) in [
            ("acquireTimeout", self.acquireTimeout), ("connectTimeout", self.connectTimeout),
            ("commandTimeout", self.commandTimeout), ("idleTimeout", self.idleTimeout),
            ("reconnectDelay", self.reconnectDelay), ("maxReconnectDelay", self.maxReconnectDelay),
        ] where value <= .zero {
            problems.append("\(name) must be positive")
        }
        if self.retryDelay < .zero { problems.append("retryDelay must not be negative") }
        if self.maxRedirects < 0 { problems.append("maxRedirects must be 0 or more") }
        if self.database < 0 { problems.append("database must be 0 or more") }
        if case .cluster = self.mode, self.database != 0 {
            problems.append("a Redis Cluster has only database 0: remove the /db from the URL")
        }
        if self.password == nil && self.username != nil {
            problems.append("a username needs a password (redis://user:password@host)")
        }
        if self.parserLimits.maxDepth < 1 || self.parserLimits.maxBulkLength < 0
            || self.parserLimits.maxAggregateLength < 0 || self.parserLimits.maxLineLength < 16
        {
            problems.append("parserLimits must allow depth 1, lines of 16 bytes and non-negative lengths")
        }
        if !problems.isEmpty { throw RedisConfigurationError(problems: problems) }
    }
}

/// A parsed `redis://` or `unix://` URL.
struct RedisURL {
    var endpoint: RedisConfiguration.Endpoint
    var username: String?
    var password: String?
    var database = 0

    init(_ text: String) throws(RedisConfigurationError) {
        func fail(_ why: String) -> RedisConfigurationError {
            // The URL may hold a password: only its scheme is repeated.
            RedisConfigurationError(problems: ["Redis URL (\(text.prefix { $0 != ":" })://…): \(why)"])
        }
        if text.hasPrefix("unix://") {
            var rest = Substring(text.dropFirst("unix://".count))
            if let query = rest.firstIndex(of: "?") {
                for item in rest[rest.index(after: query)...].split(separator: "&") {
                    let parts = item.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0] == "db", let db = Int(parts[1]), db >= 0 else {
                        throw fail("only ?db=N is understood after a socket path")
                    }
                    self.database = db
                }
                rest = rest[..<query]
            }
            guard rest.hasPrefix("/"), rest.count > 1 else { throw fail("a unix socket URL needs an absolute path") }
            self.endpoint = .unixSocket(path: String(rest))
            return
        }
        if text.hasPrefix("rediss://") {
            throw fail("TLS (rediss://) is not supported; connect over a trusted network or a unix socket")
        }
        guard text.hasPrefix("redis://") else { throw fail("the scheme must be redis:// or unix://") }
        var rest = Substring(text.dropFirst("redis://".count))
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = Self.percentDecoded(userInfo[..<colon])
                self.username = user.isEmpty ? nil : user
                self.password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else if !userInfo.isEmpty {
                // `redis://password@host` is the common RESP2 form.
                self.password = Self.percentDecoded(userInfo)
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else { throw fail("the path must be a database number") }
                self.database = db
            }
            rest = rest[..<slash]
        }
        var host: Substring
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("an IPv6 host needs its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { throw fail("invalid port") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { throw fail("invalid port") }
            port = value
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw fail("the URL needs a host") }
        guard (1...65535).contains(port) else { throw fail("the port must be 1...65535") }
        self.endpoint = .tcp(host: String(host), port: port)
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let pair = [iterator.next(), iterator.next()].compactMap { $0 }
            if pair.count == 2, let value = UInt8(String(decoding: pair, as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
                bytes.append(contentsOf: pair)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
