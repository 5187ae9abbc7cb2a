// swift-tools-version: 6.1
import PackageDescription

// A Hummingbird 2 app using Strata middlewares through StrataHummingbird: its own package, as
// (in a folder of its own, since a package named after its folder "Hummingbird" would clash
// with the hummingbird package) an app would be, depending on Strata by path with the trait on.
let package = Package(
    name: "HummingbirdExample",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: "../../..", traits: ["Hummingbird"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdExample",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataCORS", package: "Strata"),
                .product(name: "StrataCompression", package: "Strata"),
                .product(name: "StrataHummingbird", package: "Strata"),
            ]
        )
    ]
)
