// swift-tools-version: 6.1
import PackageDescription

// Every target, tests included, builds with the same strictness.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Strata", targets: ["Strata"]),
        .library(name: "StrataServer", targets: ["StrataServer"]),
        .library(name: "StrataTesting", targets: ["StrataTesting"]),
        .library(name: "StrataCORS", targets: ["StrataCORS"]),
        .library(name: "StrataCompression", targets: ["StrataCompression"]),
        .library(name: "StrataWebSocket", targets: ["StrataWebSocket"]),
        .library(name: "StrataRedis", targets: ["StrataRedis"]),
        .library(name: "StrataSessions", targets: ["StrataSessions"]),
        .library(name: "StrataSessionsRedis", targets: ["StrataSessionsRedis"]),
        .library(name: "StrataSessionsCookie", targets: ["StrataSessionsCookie"]),
        .library(name: "StrataRateLimit", targets: ["StrataRateLimit"]),
        .library(name: "StrataRateLimitRedis", targets: ["StrataRateLimitRedis"]),
        .library(name: "StrataReverseProxy", targets: ["StrataReverseProxy"]),
        .library(name: "StrataCache", targets: ["StrataCache"]),
        .library(name: "StrataCacheRedis", targets: ["StrataCacheRedis"]),
        .library(name: "StrataHummingbird", targets: ["StrataHummingbird"]),
        .library(name: "StrataVapor", targets: ["StrataVapor"]),
        .executable(name: "HelloExample", targets: ["HelloExample"]),
        .executable(name: "CORSExample", targets: ["CORSExample"]),
        .executable(name: "CompressionExample", targets: ["CompressionExample"]),
        .executable(name: "WebSocketExample", targets: ["WebSocketExample"]),
        .executable(name: "RedisExample", targets: ["RedisExample"]),
        .executable(name: "SessionsExample", targets: ["SessionsExample"]),
        .executable(name: "RateLimitExample", targets: ["RateLimitExample"]),
        .executable(name: "ReverseProxyExample", targets: ["ReverseProxyExample"]),
        .executable(name: "CacheExample", targets: ["CacheExample"]),
        .executable(name: "CachingProxyExample", targets: ["CachingProxyExample"]),
    ],
    traits: [
        .trait(
            name: "Brotli",
            description: "The br content coding in StrataCompression, through the system libbrotli (libbrotli-dev)."
        ),
        .trait(
            name: "Zstd",
            description: "The zstd content coding in StrataCompression, through the system libzstd (libzstd-dev)."
        ),
        .trait(
            name: "Libdeflate",
            description:
                "Whole in-memory bodies gzip/deflate-compressed in one call by the system libdeflate (libdeflate-dev); streams stay on zlib."
        ),
        .trait(
            name: "TLS",
            description: "https:// upstreams in StrataReverseProxy, through swift-nio-ssl (BoringSSL)."
        ),
        .trait(
            name: "Hummingbird",
            description: "StrataHummingbird: any Strata middleware stack as one Hummingbird 2 middleware."
        ),
        .trait(
            name: "Vapor",
            description: "StrataVapor: any Strata middleware stack as one Vapor 4 middleware, upgrades included."
        ),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Only StrataRateLimit uses it: the RateLimit and RateLimit-Policy structured fields.
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // Only the stores that hash or encrypt session data use it.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        // Only StrataReverseProxy uses it, and only with the TLS trait on.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Only the StrataHummingbird target uses it, and only with the Hummingbird trait on.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // Only the StrataVapor target uses it, and only with the Vapor trait on.
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
    ],
    targets: [
        // The shared protocol: swift-http-types, NIOCore and swift-log only.
        .target(
            name: "Strata",
            dependencies: [
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StrataServer",
            dependencies: [
                "Strata",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StrataTesting",
            dependencies: [
                "Strata",
                "StrataServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // CORS needs nothing but the shared protocol.
        .target(
            name: "StrataCORS",
            dependencies: [
                "Strata",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Opt-in codings: the system libraries, compiled only with their trait on.
        .systemLibrary(name: "CStrataBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        .systemLibrary(name: "CStrataZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CStrataLibdeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Compression links the system zlib through compress-nio (zlib1g-dev).
        .target(
            name: "StrataCompression",
            dependencies: [
                "Strata",
                .product(name: "CompressNIO", package: "compress-nio"),
                .target(name: "CStrataBrotli", condition: .when(traits: ["Brotli"])),
                .target(name: "CStrataZstd", condition: .when(traits: ["Zstd"])),
                .target(name: "CStrataLibdeflate", condition: .when(traits: ["Libdeflate"])),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // WebSocket on the upgrade hand-over: Strata, NIOCore, ServiceLifecycle (graceful close)
        // and compress-nio (permessage-deflate through the system zlib).
        .target(
            name: "StrataWebSocket",
            dependencies: [
                "Strata",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A RESP3/RESP2 Redis client on SwiftNIO; no middleware. Strata only for its SHA-1.
        .target(
            name: "StrataRedis",
            dependencies: [
                "Strata",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // A command's async functions run on their caller's executor (an event loop for a
            // handler) instead of hopping to the generic one at every call: fewer task switches
            // per command.
            swiftSettings: swiftSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // Sessions: the middleware, the store protocol and the memory store; Strata only.
        .target(
            name: "StrataSessions",
            dependencies: [
                "Strata",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Redis session store: StrataSessions + StrataRedis, and swift-crypto for the
        // SHA-256 of the IDs at rest.
        .target(
            name: "StrataSessionsRedis",
            dependencies: [
                "Strata",
                "StrataSessions",
                "StrataRedis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The encrypted-cookie session sealer: StrataSessions + swift-crypto's AEAD.
        .target(
            name: "StrataSessionsCookie",
            dependencies: [
                "Strata",
                "StrataSessions",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Rate limiting: quotas, adaptive concurrency, the memory store; Strata and the
        // structured-field serialiser only.
        .target(
            name: "StrataRateLimit",
            dependencies: [
                "Strata",
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Redis quota store: StrataRateLimit + StrataRedis (one Lua script per decision).
        .target(
            name: "StrataRateLimitRedis",
            dependencies: [
                "Strata",
                "StrataRateLimit",
                "StrataRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The reverse proxy: its own HTTP/1.1 upstream client on NIOPosix; no other middleware.
        .target(
            name: "StrataReverseProxy",
            dependencies: [
                "Strata",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            // As for StrataRedis: an exchange's nested async calls stay on the caller's executor
            // (the connection's event loop) instead of each checking for a hop.
            swiftSettings: swiftSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // The HTTP cache: the middleware, the store protocol and the memory store; Strata only.
        .target(
            name: "StrataCache",
            dependencies: [
                "Strata",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // A request's nested async calls (lookup, collapsing, the origin, the store write)
            // stay on the caller's executor instead of each checking for a hop.
            swiftSettings: swiftSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // The cache's Redis store: StrataCache + StrataRedis, nothing else.
        .target(
            name: "StrataCacheRedis",
            dependencies: [
                "Strata",
                "StrataCache",
                "StrataRedis",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CacheExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataCache",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Cache/Sources/CacheExample",
            swiftSettings: swiftSettings
        ),
        // StrataCache in shared mode in front of StrataReverseProxy, and nothing else.
        .executableTarget(
            name: "CachingProxyExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataCache",
                "StrataCacheRedis",
                "StrataRedis",
                "StrataReverseProxy",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CachingProxy/Sources/CachingProxyExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ReverseProxyExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataReverseProxy",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ReverseProxy/Sources/ReverseProxyExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RateLimitExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataRateLimit",
                "StrataRateLimitRedis",
                "StrataRedis",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/RateLimit/Sources/RateLimitExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SessionsExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataSessions",
                "StrataSessionsRedis",
                "StrataSessionsCookie",
                "StrataRedis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Sessions/Sources/SessionsExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CompressionExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataCompression",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Compression/Sources/CompressionExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CORSExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataCORS",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CORS/Sources/CORSExample",
            swiftSettings: swiftSettings
        ),
        // The Hummingbird adapter: empty unless the Hummingbird trait is on.
        .target(
            name: "StrataHummingbird",
            dependencies: [
                "Strata",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdCore", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Vapor adapter: empty unless the Vapor trait is on.
        .target(
            name: "StrataVapor",
            dependencies: [
                "Strata",
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras", condition: .when(traits: ["Vapor"])),
                .product(name: "NIOHTTP1", package: "swift-nio", condition: .when(traits: ["Vapor"])),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "WebSocketExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataWebSocket",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/WebSocket/Sources/WebSocketExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RedisExample",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataRedis",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Redis/Sources/RedisExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "HelloExample",
            dependencies: [
                "Strata",
                "StrataServer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Hello/Sources/HelloExample",
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets: real-client runners and a response parser.
        .target(
            name: "StrataTestSupport",
            dependencies: [
                "Strata",
                "StrataTesting",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        // What the Redis stores' suites share: the real server and cluster scripts/test.sh starts.
        .target(
            name: "StrataRedisTestSupport",
            dependencies: [
                "StrataRedis",
                "StrataTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/RedisSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataTests",
            dependencies: [
                "Strata",
                "StrataTesting",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataServerTests",
            dependencies: [
                "Strata",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "HelloExample",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataCompressionTests",
            dependencies: [
                "Strata",
                "StrataCompression",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "CompressionExample",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataRedisTests",
            dependencies: [
                "StrataRedis",
                "StrataRedisTestSupport",
                "RedisExample",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "Strata",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataWebSocketTests",
            dependencies: [
                "Strata",
                "StrataWebSocket",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "WebSocketExample",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataAdapterTests",
            dependencies: [
                "Strata",
                "StrataCORS",
                "StrataCompression",
                "StrataHummingbird",
                "StrataVapor",
                "StrataWebSocket",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdCore", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataSessionsTests",
            dependencies: [
                "Strata",
                "StrataSessions",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "SessionsExample",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataSessionsRedisTests",
            dependencies: [
                "Strata",
                "StrataSessions",
                "StrataSessionsRedis",
                "StrataRedis",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "StrataRedisTestSupport",
                "SessionsExample",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataSessionsCookieTests",
            dependencies: [
                "Strata",
                "StrataSessions",
                "StrataSessionsCookie",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "SessionsExample",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataRateLimitTests",
            dependencies: [
                "Strata",
                "StrataRateLimit",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "RateLimitExample",
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataRateLimitRedisTests",
            dependencies: [
                "Strata",
                "StrataRateLimit",
                "StrataRateLimitRedis",
                "StrataRedis",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "StrataRedisTestSupport",
                "RateLimitExample",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataCORSTests",
            dependencies: [
                "Strata",
                "StrataCORS",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "CORSExample",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataReverseProxyTests",
            dependencies: [
                "Strata",
                "StrataReverseProxy",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "StrataWebSocket",
                "ReverseProxyExample",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataCacheTests",
            dependencies: [
                "Strata",
                "StrataCache",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "StrataCompression",
                "StrataSessions",
                "CacheExample",
                "CachingProxyExample",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrataCacheRedisTests",
            dependencies: [
                "Strata",
                "StrataCache",
                "StrataCacheRedis",
                "StrataRedis",
                "StrataServer",
                "StrataTesting",
                "StrataTestSupport",
                "StrataRedisTestSupport",
                "CachingProxyExample",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
