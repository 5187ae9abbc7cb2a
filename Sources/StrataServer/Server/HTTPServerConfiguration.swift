/// How the server listens, and the limits and timeouts it enforces on every connection.
///
/// Every limit has a safe default; the initialiser refuses values that would switch one off.
///
/// ```swift
/// var configuration = try HTTPServerConfiguration(host: "0.0.0.0", port: 8080)
/// ```
public struct HTTPServerConfiguration: Sendable {
    /// The address to bind, for example `127.0.0.1` or `0.0.0.0`.
    public var host: String
    /// The port to bind; `0` picks a free one (see `HTTPServer`'s `onServerRunning`).
    public var port: Int
    /// The most bytes of request line and header fields in one request head (431 beyond).
    public var maxRequestHeadSize: Int
    /// The most header fields in one request head (431 beyond).
    public var maxHeaderCount: Int
    /// The most bytes in one request body, declared or streamed (413 beyond).
    public var maxRequestBodySize: Int
    /// How long a client may take to send a whole request head, from its first byte (or from
    /// accepting the connection). The connection is then answered 408 and closed.
    public var requestHeadTimeout: Duration
    /// How long a request body may stall while the server waits for its bytes.
    public var requestBodyTimeout: Duration
    /// How long a keep-alive connection may sit idle between requests.
    public var idleTimeout: Duration
    /// How long graceful shutdown waits for in-flight requests before closing their connections.
    public var shutdownTimeout: Duration
    /// The listen backlog.
    public var backlog: Int
    /// The `Server` field sent with every response, if any.
    public var serverName: String?

    /// Creates a configuration.
    ///
    /// - Throws: ``HTTPServerConfigurationError`` listing every value out of range.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        maxRequestHeadSize: Int = 32 * 1024,
        maxHeaderCount: Int = 100,
        maxRequestBodySize: Int = 8 * 1024 * 1024,
        requestHeadTimeout: Duration = .seconds(10),
        requestBodyTimeout: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(60),
        shutdownTimeout: Duration = .seconds(10),
        backlog: Int = 256,
        serverName: String? = nil
    ) throws(HTTPServerConfigurationError) {
        self.host = host
        self.port = port
        self.maxRequestHeadSize = maxRequestHeadSize
        self.maxHeaderCount = maxHeaderCount
        self.maxRequestBodySize = maxRequestBodySize
        self.requestHeadTimeout = requestHeadTimeout
        self.requestBodyTimeout = requestBodyTimeout
        self.idleTimeout = idleTimeout
        self.shutdownTimeout = shutdownTimeout
        self.backlog = backlog
        self.serverName = serverName
        try self.validate()
    }

    /// Checks every value; called by the initialiser and by the server before it binds.
    public func validate() throws(HTTPServerConfigurationError) {
        var problems: [String] = []
        if !(0...65535).contains(self.port) { problems.append("port \(self.port) must be in 0...65535") }
        if !(1024...(1 << 20)).contains(self.maxRequestHeadSize) {
            problems.append("maxRequestHeadSize \(self.maxRequestHeadSize) must be in 1 KiB...1 MiB")
        }
        if !(1...10_000).contains(self.maxHeaderCount) {
            problems.append("maxHeaderCount \(self.maxHeaderCount) must be in 1...10000")
        }
        if self.maxRequestBodySize < 0 { problems.append("maxRequestBodySize must not be negative") }
        for (name, value) in [
            ("requestHeadTimeout", self.requestHeadTimeout), ("requestBodyTimeout", self.requestBodyTimeout),
            ("idleTimeout", self.idleTimeout), ("shutdownTimeout", self.shutdownTimeout),
        ] where value <= .zero || value > .seconds(3600) {
            problems.append("\(name) must be more than zero and at most an hour")
        }
        if self.backlog < 1 { problems.append("backlog must be at least 1") }
        if let serverName = self.serverName,
            serverName.isEmpty || serverName.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        {
            problems.append("serverName must be non-empty printable text")
        }
        if !problems.isEmpty { throw HTTPServerConfigurationError(problems: problems) }
    }
}

/// A server configuration that was refused.
public struct HTTPServerConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every value out of range, with the range it must be in.
    public let problems: [String]
    public var description: String { "HTTPServerConfiguration: " + self.problems.joined(separator: "; ") }
}
