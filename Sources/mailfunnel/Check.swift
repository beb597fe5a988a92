import ArgumentParser
import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation
import Logging

extension Mailfunnel {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config file, log in to every source and target, and say what each server offers and what will be used.",
            discussion: "Changes nothing. Exits 0 when every account is ready, else with the most serious problem's status."
        )

        @Option(name: .long, help: ArgumentHelp("The TOML config file.", valueName: "file"), completion: .file(extensions: ["toml"]))
        var config: String

        @OptionGroup var common: CommonOptions

        func run() async throws {
            common.bootstrapLogging()
            let logger = Logger(label: "mailfunnel")
            let jobs: [ImportJob]
            do {
                jobs = try Config.load(path: config).importJobs(accounts: [], base: TransferOptions())
            } catch {
                throw ExitCode(report(error).rawValue)
            }
            print("\(config): valid, \(jobs.count) account(s)")
            var worst = ExitStatus.ok
            for job in jobs {
                print("\(job.name):")
                for r in await job.probe(logger: logger) {
                    print("  \(r.role) \(r.url)")
                    for d in r.details { print("    \(d)") }
                    if let f = r.failure {
                        print("    PROBLEM: \(f.message)")
                        worst = worse(worst, f.status)
                    }
                }
            }
            if worst != .ok { throw ExitCode(worst.rawValue) }
        }
    }
}
