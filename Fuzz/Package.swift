// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for MailFunnel's parsers, in a package of their own: they build with
// `--sanitize=fuzzer`, which the main package's tests must not. Run them with scripts/fuzz.
let package = Package(
    name: "MailFunnelFuzz",
    dependencies: [
        .package(name: "MailFunnel", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(name: "FuzzIMAP", dependencies: [
            "FuzzSupport", .product(name: "MailFunnelParsers", package: "MailFunnel"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "FuzzPOP3", dependencies: [
            "FuzzSupport", .product(name: "MailFunnelParsers", package: "MailFunnel"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "FuzzSMTP", dependencies: [
            "FuzzSupport", .product(name: "MailFunnelParsers", package: "MailFunnel"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "FuzzMbox", dependencies: [
            "FuzzSupport", .product(name: "MailFunnelParsers", package: "MailFunnel"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "FuzzHeaders", dependencies: [
            "FuzzSupport", .product(name: "MailFunnelParsers", package: "MailFunnel"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // The config loader needs the Funnel module and all it builds on: the slowest to build.
        .executableTarget(name: "FuzzConfig", dependencies: [
            "FuzzSupport", .product(name: "Funnel", package: "MailFunnel"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
