import ArgumentParser
import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation

extension Mailfunnel {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each account's messages by state, its last run and its last error, from the ledger."
        )

        @Option(name: .long, help: ArgumentHelp("Take the ledger path from this config file.", valueName: "file"), completion: .file(extensions: ["toml"]))
        var config: String?

        @Flag(name: .long, help: "Print JSON instead of a table.")
        var json = false

        @OptionGroup var common: CommonOptions

        func run() async throws {
            do {
                var path = common.ledger
                if path == nil, let config { path = try Config.load(path: config).ledger }
                let ledgerPath = path ?? SQLiteLedger.defaultPath
                guard FileManager.default.fileExists(atPath: ledgerPath) else {
                    throw FunnelError.usage("no ledger at \(ledgerPath) yet: nothing has been imported (give --ledger PATH if it lives elsewhere)")
                }
                let accounts = try await SQLiteLedger(path: ledgerPath, readOnly: true).status()
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(accounts), as: UTF8.self))
                    return
                }
                if accounts.isEmpty { print("The ledger at \(ledgerPath) holds no accounts yet.") }
                let formatter = ISO8601DateFormatter()
                for a in accounts {
                    print(a.name == a.source ? a.source : "\(a.name) (\(a.source))")
                    if let t = a.target { print("  target:       \(t)") }
                    let counts = LedgerState.allCases.map { "\($0.rawValue) \(a.counts[$0.rawValue] ?? 0)" }
                    print("  messages:     \(counts.joined(separator: ", "))")
                    print("  last run:     \(a.lastRunStarted.map(formatter.string) ?? "never")")
                    print("  last success: \(a.lastSuccess.map(formatter.string) ?? "never")")
                    if let e = a.lastError { print("  last error:   \(e)") }
                    if a.superseded > 0 { print("  renumbered:   \(a.superseded) older record(s) of these messages, before a UIDVALIDITY change") }
                    if a.backlog > 0 { print("  backlog:      \(a.backlog) message(s) to deliver or retry") }
                    if let w = a.waiting {
                        print("  next:         " + (w == "idle" ? "waiting for new mail (IDLE)" : "\(w) at \(a.nextPoll.map(formatter.string) ?? "?")"))
                    }
                }
            } catch {
                throw ExitCode(report(error).rawValue)
            }
        }
    }
}
