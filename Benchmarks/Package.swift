// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so the library's users never resolve the benchmark
// harness or the peers it is compared with.
let package = Package(
    name: "StrataBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: "../", traits: ["Hummingbird", "Vapor", "Libdeflate"]),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "StrataBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataTesting", package: "Strata"),
                .product(name: "StrataCORS", package: "Strata"),
                .product(name: "StrataCompression", package: "Strata"),
                .product(name: "StrataWebSocket", package: "Strata"),
                .product(name: "StrataRedis", package: "Strata"),
                .product(name: "StrataSessions", package: "Strata"),
                .product(name: "StrataRateLimit", package: "Strata"),
                .product(name: "StrataReverseProxy", package: "Strata"),
                .product(name: "StrataCache", package: "Strata"),
                .product(name: "CompressNIO", package: "compress-nio"),
                "CBenchLibdeflate",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/StrataBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The system libdeflate, for the raw rows next to StrataCompression's Libdeflate path.
        .systemLibrary(name: "CBenchLibdeflate", path: "Tools/CBenchLibdeflate", pkgConfig: "libdeflate"),
        // The load generator `scripts/bench-redis.sh` runs against redis-benchmark's figures.
        .executableTarget(
            name: "RedisLoad",
            dependencies: [
                .product(name: "StrataRedis", package: "Strata"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/RedisLoad"
        ),
        // The peer `scripts/bench-server.sh` runs side by side with HelloExample.
        .executableTarget(
            name: "HummingbirdPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Peers/HummingbirdPeer"
        ),
        // The peer `scripts/bench-websocket.sh` runs side by side with WebSocketExample's /echo.
        .executableTarget(
            name: "HummingbirdWebSocketPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            path: "Peers/HummingbirdWebSocketPeer"
        ),
        // The peer `scripts/bench-adapters.sh` runs twice: Hummingbird's CORS, and StrataCORS
        // through the adapter.
        .executableTarget(
            name: "HummingbirdCORSPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataCORS", package: "Strata"),
                .product(name: "StrataHummingbird", package: "Strata"),
            ],
            path: "Peers/HummingbirdCORSPeer"
        ),
        // The Vapor peer of `scripts/bench-adapters.sh`: Vapor's CORS and compression against
        // StrataCORS and StrataCompression through the adapter.
        .executableTarget(
            name: "VaporPeer",
            dependencies: [
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataCORS", package: "Strata"),
                .product(name: "StrataCompression", package: "Strata"),
                .product(name: "StrataVapor", package: "Strata"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Peers/VaporPeer"
        ),
        // scripts/bench-sessions.sh: Strata's sessions on StrataServer (memory or Redis store)...
        .executableTarget(
            name: "SessionsServer",
            dependencies: [
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataServer", package: "Strata"),
                .product(name: "StrataSessions", package: "Strata"),
                .product(name: "StrataSessionsRedis", package: "Strata"),
                .product(name: "StrataRedis", package: "Strata"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/SessionsServer"
        ),
        // scripts/bench-cache.sh: the bytes a cache hit serves, from a plain StrataServer route.
        .executableTarget(
            name: "BytesServer",
            dependencies: [
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataServer", package: "Strata"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/BytesServer"
        ),
        // ...and its Hummingbird peer, hummingbird-auth's SessionMiddleware (the Vapor peer is
        // VaporPeer --mode sessions).
        .executableTarget(
            name: "RateLimitServer",
            dependencies: [
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataServer", package: "Strata"),
                .product(name: "StrataRateLimit", package: "Strata"),
                .product(name: "StrataRateLimitRedis", package: "Strata"),
                .product(name: "StrataRedis", package: "Strata"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/RateLimitServer"
        ),
        .executableTarget(
            name: "HummingbirdSessionsPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            ],
            path: "Peers/HummingbirdSessionsPeer"
        ),
        // The floor of a proxy on SwiftNIO for `scripts/bench-proxy.sh`: a TCP forwarder made
        // of channel handlers only.
        .executableTarget(
            name: "ProxyFloor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tools/ProxyFloor"
        ),
        // ...and the ceiling of a proxy on StrataServer: a responder with the least client work.
        .executableTarget(
            name: "ProxyCeiling",
            dependencies: [
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataServer", package: "Strata"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/ProxyCeiling"
        ),
        // The floor of a caching proxy's miss (the proxy, then the store write), for
        // `scripts/bench-cache.sh`.
        .executableTarget(
            name: "ProxyStoreFloor",
            dependencies: [
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataServer", package: "Strata"),
                .product(name: "StrataReverseProxy", package: "Strata"),
                .product(name: "StrataCache", package: "Strata"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/ProxyStoreFloor"
        ),
        // The load generator of `scripts/bench-websocket.sh`.
        .executableTarget(
            name: "WebSocketLoad",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tools/WebSocketLoad"
        ),
    ]
)
