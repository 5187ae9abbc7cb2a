// swift-tools-version: 6.1
import PackageDescription

// A Vapor 4 app using Strata middlewares through StrataVapor: its own package, as an app would be,
// depending on Strata by path with the trait on (in a folder of its own, since a package named
// after its folder "Vapor" would clash with the vapor package).
let package = Package(
    name: "VaporExample",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: "../../..", traits: ["Vapor"]),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
    ],
    targets: [
        .executableTarget(
            name: "VaporExample",
            dependencies: [
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Strata", package: "Strata"),
                .product(name: "StrataCORS", package: "Strata"),
                .product(name: "StrataCompression", package: "Strata"),
                .product(name: "StrataWebSocket", package: "Strata"),
                .product(name: "StrataVapor", package: "Strata"),
            ]
        )
    ]
)
