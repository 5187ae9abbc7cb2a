import NIOCore
import Synchronization

/// What a new connection says first: `HELLO 3` with `AUTH` and `SETNAME` in one round trip,
/// or, for servers that refuse `HELLO` (before Redis 6) or when RESP2 is asked for, `AUTH`,
/// `CLIENT SETNAME` and `SELECT` pipelined.
enum RedisHandshake {
    static func run(on connection: RedisConnection, configuration: RedisConfiguration) async throws {
        if configuration.protocolVersion == .resp3 {
            var hello = RedisCommand("HELLO")
            hello.append("3")
            if let password = configuration.password {
                hello.append("AUTH")
                hello.append(configuration.username ?? "default")
                hello.append(password)
            }
            if let name = configuration.clientName {
                hello.append("SETNAME")
                hello.append(name)
            }
            let reply = try await connection.send(hello)
            switch reply {
            case .error(let message):
                let error = RedisServerError(message)
                // Redis 5 and earlier: `ERR unknown command 'HELLO'`; a server without RESP3: NOPROTO.
                guard error.prefix == "NOPROTO" || error.message.lowercased().contains("unknown command") else {
                    throw Self.refused(error)
                }
            default:
                connection.protocolVersion.store(3, ordering: .relaxed)
                if configuration.database != 0 {
                    try Self.check(try await connection.send(Self.select(configuration.database)))
                }
                return
            }
        }
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            var auth = RedisCommand("AUTH")
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            commands.append(auth)
        }
        if let name = configuration.clientName {
            var setName = RedisCommand("CLIENT")
            setName.append("SETNAME")
            setName.append(name)
            commands.append(setName)
        }
        if configuration.database != 0 { commands.append(Self.select(configuration.database)) }
        guard !commands.isEmpty else { return }
        for reply in try await connection.send(batch: commands) { try Self.check(reply) }
    }

    private static func select(_ database: Int) -> RedisCommand {
        var select = RedisCommand("SELECT")
        select.append(database)
        return select
    }

    private static func check(_ reply: RESPValue) throws {
        if case .error(let message) = reply { throw Self.refused(RedisServerError(message)) }
    }

    /// A refused handshake; the server's words, which never contain the password.
    private static func refused(_ error: RedisServerError) -> RedisClientError {
        RedisClientError(
            .connectionFailed, mayHaveRun: false, message: "the server refused the handshake: \(error.message)")
    }
}
