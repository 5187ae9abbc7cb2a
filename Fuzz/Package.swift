// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets, in a package of their own: they are built with `-sanitize=fuzzer`
// (scripts/fuzz-resp.sh), which the library's ordinary builds must not be.
let package = Package(
    name: "StrataFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: "../"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "RESPFuzzer",
            dependencies: [
                .product(name: "StrataRedis", package: "Strata"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "RESPFuzzer"
        )
    ]
)
