// swift-tools-version:6.2
import PackageDescription

// Linux only: the code calls Glibc (O_TMPFILE, syncfs, renameat2, st_mtim) directly.
let package = Package(
    name: "MailFunnel",
    products: [
        .executable(name: "mailfunnel", targets: ["mailfunnel"]),
        .library(name: "Funnel", targets: ["Funnel"]),
        // For the fuzz targets (Fuzz/, a package of its own): the sans-I/O parsers alone.
        .library(name: "MailFunnelParsers", targets: ["IMAPCore", "POP3Core", "SMTPCore", "MailMessage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Spool-independent message helpers: header scan, line-end normalisation, mbox From_ quoting.
        .target(
            name: "MailMessage",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Sans-I/O IMAP: response parser (streams message bodies), command encoder, UID sets,
        // INTERNALDATE, modified UTF-7.
        .target(
            name: "IMAPCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Sans-I/O POP3: a response parser that streams RETR bodies with dot-unstuffing.
        .target(
            name: "POP3Core",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Sans-I/O SMTP: reply parser with enhanced status codes, DATA dot-stuffing.
        .target(
            name: "SMTPCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Sans-I/O SASL: credentials, the mechanisms (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256,
        // OAUTHBEARER, XOAUTH2) and the state machine of one exchange.
        .target(
            name: "SASL",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // NIO connections (TCP, implicit TLS, STARTTLS), the session opening the three protocols
        // share, the redacted protocol trace, and the async protocol clients.
        .target(
            name: "MailTransport",
            dependencies: [
                "SASL",
                "IMAPCore",
                "POP3Core",
                "SMTPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What every room shares: source keys and listed messages, the MailSource / MailSink
        // protocols the engine drives, the spool, the Ledger protocol with its records and an
        // in-memory ledger, errors and exit statuses.
        .target(
            name: "FunnelModel",
            dependencies: [
                "MailMessage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The ledger in a SQLite file; GRDB is used here and nowhere else.
        .target(
            name: "LedgerSQLite",
            dependencies: [
                "FunnelModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The exactly-once transfer: its state machine and the runner that performs its actions.
        // It sees sources, sinks and a ledger through their protocols only.
        .target(
            name: "TransferEngine",
            dependencies: [
                "FunnelModel",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // One folder per kind of mailbox (IMAP, POP3, mbox, Maildir, SMTP): its source or sink, the
        // ledger identity of its URLs, its probe and the exit status of its errors; and the URL
        // grammar and settings they are made from.
        .target(
            name: "Drivers",
            dependencies: [
                "FunnelModel",
                "MailMessage",
                "IMAPCore",
                "SMTPCore",
                "MailTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The glue a user meets: the TOML config, import jobs, the daemon's services.
        .target(
            name: "Funnel",
            dependencies: [
                "FunnelModel",
                "LedgerSQLite",
                "TransferEngine",
                "Drivers",
                "MailTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "mailfunnel",
            dependencies: [
                "Funnel",
                "FunnelModel",
                "LedgerSQLite",
                "TransferEngine",
                "Drivers",
                "MailTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // What the ledger's writes cost a message, alone (scripts/bench measures whole runs).
        .executableTarget(name: "ledger-bench", dependencies: ["FunnelModel", "LedgerSQLite"]),
        .testTarget(name: "MailMessageTests", dependencies: ["MailMessage"]),
        .testTarget(
            name: "IMAPCoreTests",
            dependencies: ["IMAPCore", .product(name: "NIOCore", package: "swift-nio")],
            // Recorded server responses, read from the source tree (see Fixtures/README.md).
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "POP3CoreTests",
            dependencies: ["POP3Core", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "SMTPCoreTests",
            dependencies: ["SMTPCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "SASLTests", dependencies: ["SASL"]),
        .testTarget(
            name: "MailTransportTests",
            dependencies: ["MailTransport", "IMAPCore", "SMTPCore", "SASL", "FunnelTestSupport", .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        ),
        // Helpers the test targets share: temporary directories, Maildirs, sample mail, and the
        // loopback server that plays a recorded conversation (TranscriptServer).
        .target(
            name: "FunnelTestSupport",
            dependencies: ["FunnelModel", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Tests/FunnelTestSupport"
        ),
        .testTarget(
            name: "FunnelModelTests",
            dependencies: ["FunnelModel", "FunnelTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "LedgerTests",
            dependencies: ["FunnelModel", "LedgerSQLite", "FunnelTestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "TransferEngineTests",
            dependencies: ["TransferEngine", "FunnelModel", "Drivers", "LedgerSQLite", "FunnelTestSupport", "MailMessage",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "DriversTests",
            dependencies: ["Drivers", "FunnelModel", "FunnelTestSupport", "MailTransport", "IMAPCore", "MailMessage",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "FunnelTests",
            dependencies: ["Funnel", "FunnelModel", "Drivers", "TransferEngine", "FunnelTestSupport", "IMAPCore", "MailTransport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "MailfunnelCLITests", dependencies: ["Funnel"]),
        // Against the real Dovecot (and later Postfix) that scripts/test starts on loopback.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Funnel", "FunnelModel", "Drivers", "TransferEngine", "LedgerSQLite", "MailTransport", "IMAPCore", "MailMessage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
