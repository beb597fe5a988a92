import LedgerSQLite
import TransferEngine
import Drivers
import FunnelModel
import Foundation
import Logging
import MailTransport
import ServiceLifecycle
import UnixSignals

/// `mailfunnel run`: serves every account of a config file, each in its own loop, and re-reads the
/// file on SIGHUP. Accounts added are started, removed ones stopped, changed ones restarted; a
/// file that does not load is reported and the running accounts carry on as they were.
public struct DaemonService: Service {
    let configPath: String
    let ledger: any Ledger
    let locks: AccountLocks?
    let logger: Logger
    let initial: Config

    public init(configPath: String, config: Config, ledger: any Ledger, locks: AccountLocks?, logger: Logger) {
        self.configPath = configPath
        self.initial = config
        self.ledger = ledger
        self.locks = locks
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let limiter = AccountLimiter(initial.daemon.maxConcurrentAccounts)
        try await withThrowingDiscardingTaskGroup { group in
            var running: [String: (fingerprint: String, stop: StopFlag)] = [:]
            func services(_ c: Config) throws -> [(AccountService, String)] {
                try c.services(ledger: ledger, locks: locks, logger: logger, limiter: limiter).map { ($0, "\($0.job) \($0.pollInterval) \($0.idle)") }
            }
            for (service, fingerprint) in try services(initial) {
                let stop = StopFlag()
                running[service.job.name] = (fingerprint, stop)
                group.addTask { try await service.run(until: stop) }
            }
            logger.notice("serving \(running.count) account(s): \(running.keys.sorted().joined(separator: ", "))")
            for await _ in signals.cancelOnGracefulShutdown() {
                let next: [(AccountService, String)]
                do {
                    next = try services(try Config.load(path: configPath))
                } catch {
                    logger.error("reload refused, the running configuration stays: \(describeFailure(error).message)")
                    continue
                }
                // The system's trust roots may have changed too (a CA file is checked at every connection).
                TLSContexts.forget()
                let wanted = Dictionary(next.map { ($0.0.job.name, $0) }, uniquingKeysWith: { a, _ in a })
                for (name, entry) in running where wanted[name]?.1 != entry.fingerprint {
                    entry.stop.raise()
                    running[name] = nil
                    logger.notice("reload: stopping \(name)")
                }
                for (name, (service, fingerprint)) in wanted where running[name] == nil {
                    let stop = StopFlag()
                    running[name] = (fingerprint, stop)
                    group.addTask { try await service.run(until: stop) }
                    logger.notice("reload: starting \(name)")
                }
            }
            for entry in running.values { entry.stop.raise() }
        }
    }
}
