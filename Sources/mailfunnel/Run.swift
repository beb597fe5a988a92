import ArgumentParser
import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

extension Mailfunnel {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The daemon: keep gathering mail from every configured account (polling, or IMAP IDLE push).",
            discussion: """
                Each account runs a pass, then waits: its poll_interval (with jitter), a growing backoff \
                after a failure, or IDLE until new mail when idle = true.

                SIGTERM or SIGINT stop it within a batch, with the ledger consistent, and it exits 0. \
                SIGHUP re-reads the config: accounts added, removed or changed take effect without a \
                restart; a file that does not load is reported and the running one stays. \
                `mailfunnel status` shows each account's runs meanwhile.
                """
        )

        @Option(name: .long, help: ArgumentHelp("The TOML config file.", valueName: "file"), completion: .file(extensions: ["toml"]))
        var config: String

        @OptionGroup var common: CommonOptions

        func run() async throws {
            common.bootstrapLogging(daemon: true)
            let logger = Logger(label: "mailfunnel")
            do {
                let c = try Config.load(path: config)
                guard !c.accounts.isEmpty else { throw FunnelError.config(file: config, line: nil, key: "accounts", message: "no [[accounts]] to serve") }
                let path = common.ledger ?? c.ledger ?? SQLiteLedger.defaultPath
                let ledger = try SQLiteLedger(path: path)
                var services: [any Service] = [DaemonService(configPath: config, config: c, ledger: ledger,
                                                             locks: AccountLocks(ledgerPath: path), logger: logger)]
                if let listen = c.daemon.metricsListen {
                    guard let (host, port) = MetricsServer.parse(listen) else {
                        throw FunnelError.config(file: config, line: nil, key: "daemon.metrics_listen",
                                                 message: "'\(listen)' is not HOST:PORT (such as 127.0.0.1:9120)")
                    }
                    let registry = PrometheusCollectorRegistry()
                    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
                    services.append(MetricsServer(host: host, port: port, registry: registry, logger: logger))
                }
                let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                try await group.run()
                logger.notice("stopped")
            } catch {
                throw ExitCode(report(error).rawValue)
            }
        }
    }
}
