import ArgumentParser
import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation
import Logging
import MailTransport
import Synchronization

extension Mailfunnel {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One pass: deliver every message not yet delivered from a source into a target.",
            discussion: """
                Ad hoc:
                  mailfunnel import mbox:old.mbox maildir:~/Maildir
                  mailfunnel import imaps://old@imap.example.net imaps://me@mail.example.org
                      --source-password-file old.pass --target-password-file me.pass

                From config:
                  mailfunnel import --config mailfunnel.toml [--account NAME]...

                URLs: imap://USER@HOST[:PORT][/FOLDER], imaps://…, pop3://USER@HOST[:PORT], \
                pop3s://…, mbox:PATH[?format=mboxo], maildir:PATH[?names=utf-8]; smtp://[USER@]HOST[:PORT] \
                and smtps://… targets (with --envelope-to). Passwords come from files, commands or \
                $MAILFUNNEL_SOURCE_PASSWORD / $MAILFUNNEL_TARGET_PASSWORD, never from the command line.
                """
        )

        @Argument(help: ArgumentHelp("Where to read mail (imap[s]://USER@HOST[/FOLDER], pop3[s]://USER@HOST, mbox:PATH, maildir:PATH).", valueName: "source-url"))
        var source: String?

        @Argument(help: ArgumentHelp("Where to deliver it (imap[s]://USER@HOST[/FOLDER], smtp[s]://[USER@]HOST, maildir:PATH).", valueName: "target-url"))
        var target: String?

        @Option(name: .long, help: ArgumentHelp("Read accounts and targets from this TOML file.", valueName: "file"), completion: .file(extensions: ["toml"]))
        var config: String?

        @Option(name: .long, help: ArgumentHelp("With --config: only this account (repeatable).", valueName: "name"))
        var account: [String] = []

        @Option(name: .long, help: ArgumentHelp("What to do with a source message once its delivery is committed: keep, mark-seen or delete.", valueName: "action"),
                completion: .list(["keep", "mark-seen", "delete"]))
        var afterDelivery: String?

        @Option(name: .long, help: ArgumentHelp("Deliver every source folder into this one target folder.", valueName: "folder"))
        var into: String?

        @Option(name: .long, help: ArgumentHelp("Only these source folders, comma-separated (default: all).", valueName: "a,b"))
        var folders: String?

        @Option(name: .long, help: ArgumentHelp("Read the source's password from the first line of this file.", valueName: "file"), completion: .file())
        var sourcePasswordFile: String?

        @Option(name: .long, help: ArgumentHelp("Run this command (with /bin/sh) and take the first line it prints as the source's password.", valueName: "command"))
        var sourcePasswordCommand: String?

        @Option(name: .long, help: ArgumentHelp("Read the target's password from the first line of this file.", valueName: "file"), completion: .file())
        var targetPasswordFile: String?

        @Option(name: .long, help: ArgumentHelp("Run this command and take the first line it prints as the target's password.", valueName: "command"))
        var targetPasswordCommand: String?

        @Option(name: .long, help: ArgumentHelp("Trust the CA certificates in this PEM file as well as the system's.", valueName: "path"), completion: .file())
        var caFile: String?

        @Option(name: .long, help: ArgumentHelp("For imap:// and pop3:// URLs: starttls (the default; refused if the server does not offer it) or none (plain text).", valueName: "starttls|none"),
                completion: .list(["starttls", "none"]))
        var tls: String?

        @Option(name: .long, help: ArgumentHelp("For an smtp:// target: the envelope recipient.", valueName: "address"))
        var envelopeTo: String?

        @Option(name: .long, help: ArgumentHelp("Log in to the source only in these ways, tried in this order, comma-separated (SCRAM-SHA-256, PLAIN, CRAM-MD5, LOGIN, OAUTHBEARER, XOAUTH2, APOP; default: all the server offers, strongest first).", valueName: "a,b"))
        var sourceAuthMechanisms: String?

        @Option(name: .long, help: ArgumentHelp("Log in to the target only in these ways, tried in this order, comma-separated (as --source-auth-mechanisms).", valueName: "a,b"))
        var targetAuthMechanisms: String?

        @Option(name: .long, help: ArgumentHelp("Give up a connection when its server stays silent this long (default 120s), source and target alike.", valueName: "duration"))
        var timeout: String?

        @Flag(name: .long, help: "List what would be delivered; change nothing.")
        var dryRun = false

        @Flag(name: .long, help: "When another run is working on an account, wait for it to finish instead of leaving the account out (exit 75).")
        var wait = false

        @Flag(name: .long, help: "Print one JSON object with the figures on stdout at the end.")
        var json = false

        /// The crash tests' stop (mbsync's `-Ts`): the process ends at once, as a crash would, right
        /// after its Nth side effect; a run that never reaches it says on stderr how many it had.
        @Option(name: .long, help: .hidden)
        var stopAfterEffect: Int?

        /// At most this many messages a batch, so a small test mailbox still makes several batches.
        @Option(name: .long, help: .hidden)
        var batchMessages: Int?

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if config == nil {
                guard source != nil, target != nil else {
                    throw ValidationError("give a source and a target URL, or --config FILE")
                }
                guard account.isEmpty else { throw ValidationError("--account needs --config") }
            } else if source != nil || target != nil {
                throw ValidationError("give either URLs or --config, not both")
            }
            if let t = tls, t != "starttls", t != "none" {
                throw ValidationError("--tls must be starttls or none, not '\(t)'")
            }
            if sourcePasswordFile != nil && sourcePasswordCommand != nil {
                throw ValidationError("give --source-password-file or --source-password-command, not both")
            }
            if targetPasswordFile != nil && targetPasswordCommand != nil {
                throw ValidationError("give --target-password-file or --target-password-command, not both")
            }
            if let a = afterDelivery, Disposal(rawValue: a) == nil {
                throw ValidationError("--after-delivery must be keep, mark-seen or delete, not '\(a)'")
            }
            _ = try Self.loginMethods(sourceAuthMechanisms, option: "--source-auth-mechanisms")
            _ = try Self.loginMethods(targetAuthMechanisms, option: "--target-auth-mechanisms")
            _ = try Self.timeout(timeout)
        }

        /// `--timeout 60s` as a duration of at least a second; nil when the option is not given.
        static func timeout(_ text: String?) throws -> Duration? {
            guard let text else { return nil }
            guard let d = parseDuration(text), d >= .seconds(1) else {
                throw ValidationError("--timeout must be a duration of at least a second, such as 60s or 5m, not '\(text)'")
            }
            return d
        }

        /// `PLAIN,LOGIN` as login methods; nil when the option is not given.
        static func loginMethods(_ list: String?, option: String) throws -> [LoginMethod]? {
            guard let list else { return nil }
            let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValidationError("\(option) needs at least one of \(LoginMethod.names.joined(separator: ", "))") }
            switch LoginMethod.parse(names) {
            case let .success(methods): return methods
            case let .failure(unknown): throw ValidationError("\(option): \(unknown)")
            }
        }

        func run() async throws {
            common.bootstrapLogging()
            let logger = Logger(label: "mailfunnel")
            let status: ExitStatus
            do {
                status = try await runJobs(logger: logger)
            } catch {
                throw ExitCode(report(error).rawValue)
            }
            if status != .ok { throw ExitCode(status.rawValue) }
        }

        private func runJobs(logger: Logger) async throws -> ExitStatus {
            var base = TransferOptions()
            base.dryRun = dryRun
            base.connectTargetEarly = true
            if let a = afterDelivery, let d = Disposal(rawValue: a) { base.disposal = d }
            base.targetMailbox = into
            base.mailboxes = folders.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if let batchMessages { base.limits = TransferStateMachine.Limits(maxMessages: batchMessages) }
            let stop = stopAfterEffect.map(EffectStop.init)
            let sourceLogin = try Self.loginMethods(sourceAuthMechanisms, option: "--source-auth-mechanisms")
            let targetLogin = try Self.loginMethods(targetAuthMechanisms, option: "--target-auth-mechanisms")
            let silence = try Self.timeout(timeout)

            var jobs: [ImportJob]
            var ledgerPath = common.ledger
            if let config {
                let c = try Config.load(path: config)
                jobs = try c.importJobs(accounts: account, base: base)
                jobs = jobs.map { job in
                    var j = job
                    if afterDelivery != nil { j.options.disposal = base.disposal }
                    if let caFile { j.sourceSettings.caFile = caFile; j.targetSettings.caFile = caFile }
                    if let envelopeTo { j.targetSettings.envelopeTo = envelopeTo }
                    if let methods = sourceLogin { j.sourceSettings.loginMethods = methods }
                    if let methods = targetLogin { j.targetSettings.loginMethods = methods }
                    if let silence { j.sourceSettings.timeout = silence; j.targetSettings.timeout = silence }
                    return j
                }
                ledgerPath = ledgerPath ?? c.ledger
            } else {
                var sourceSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_SOURCE_PASSWORD")
                sourceSettings.secret = Config.Secret(file: sourcePasswordFile, command: sourcePasswordCommand)
                sourceSettings.caFile = caFile
                sourceSettings.tls = tls
                sourceSettings.loginMethods = sourceLogin
                sourceSettings.timeout = silence
                var targetSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_TARGET_PASSWORD")
                targetSettings.secret = Config.Secret(file: targetPasswordFile, command: targetPasswordCommand)
                targetSettings.caFile = caFile
                targetSettings.tls = tls
                targetSettings.envelopeTo = envelopeTo
                targetSettings.loginMethods = targetLogin
                targetSettings.timeout = silence
                jobs = [try await ImportJob.resolving(source: GivenEndpoint(source!, settings: sourceSettings),
                                                      target: GivenEndpoint(target!, settings: targetSettings), options: base)]
            }
            if !dryRun { jobs.forEach { $0.prepareTLS() } }
            let path = ledgerPath ?? SQLiteLedger.defaultPath
            let ledger: any Ledger
            if dryRun {
                // A dry run writes nothing: with no ledger yet, everything reads as new.
                ledger = FileManager.default.fileExists(atPath: path) ? try SQLiteLedger(path: path, readOnly: true) : MemoryLedger()
            } else {
                ledger = try SQLiteLedger(path: path)
            }

            let locks = AccountLocks(ledgerPath: path)
            let progress = ProgressDisplay(enabled: !common.quiet && !json && isatty(STDERR_FILENO) == 1)
            var total = RunSummary()
            var worst = ExitStatus.ok
            for job in jobs {
                // A dry run changes nothing, so it may look while another run works.
                let held: AccountLock?
                do {
                    held = dryRun ? nil : try await job.lock(in: locks, command: "mailfunnel import", wait: wait, logger: logger)
                } catch {
                    let (status, text) = describeFailure(error)
                    LineLogHandler.say(.error, text, plain: "mailfunnel: error: \(text)")
                    worst = worse(worst, status)
                    total.errors = (total.errors ?? []) + ["\(job.name): \(text)"]
                    continue
                }
                defer { held?.release() }
                let transfer = try job.makeTransfer(ledger: ledger, logger: logger, onEvent: { progress.handle($0) },
                                                    afterEffect: { stop?.count($0) })
                do {
                    let summary = try await transfer.run()
                    progress.finish()
                    total = total + summary
                    if !common.quiet && !json {
                        printSummary(job.name, summary, target: transfer.sink.identity)
                    }
                    if summary.deferred > 0 { worst = worse(worst, .temporaryFailure) }
                    if summary.failed > summary.deferred { worst = worse(worst, .dataError) }
                } catch {
                    progress.finish()
                    let (status, text) = describeFailure(error)
                    LineLogHandler.say(.error, text, plain: "mailfunnel: error: \(text)")
                    worst = worse(worst, status)
                    // What the account did before the error is committed: say so, beside the error.
                    var done = transfer.summary
                    done.errors = ["\(job.name): \(text)"]
                    total = total + done
                    if !common.quiet && !json {
                        printSummary(job.name, done, target: transfer.sink.identity)
                    }
                }
            }
            stop?.reportNotReached()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                var out = total
                out.seconds = (out.seconds * 1000).rounded() / 1000
                out.ledgerSeconds = (out.ledgerSeconds * 1000).rounded() / 1000
                print(String(decoding: try encoder.encode(out), as: UTF8.self))
            }
            return worst
        }

        private func printSummary(_ name: String, _ s: RunSummary, target: String) {
            let rate = s.seconds > 0 ? Double(s.delivered) / s.seconds : 0
            var line = "\(name): \(s.listed) listed, \(s.delivered) delivered, \(s.skipped) skipped, \(s.failed) failed"
            // Records are per target: say whose, so a run that delivers nothing is not a mystery.
            if s.earlier > 0 { line += " (\(s.earlier) done into \(target) by earlier runs)" }
            if s.deferred > 0 { line += " (\(s.deferred) deferred to the next run)" }
            if let would = s.wouldDeliver { line += ", \(would) would be delivered (dry run)" }
            line += String(format: ", %@ in %.2f s (%.0f msg/s)", formatBytes(s.bytes), s.seconds, rate)
            if s.errors != nil { line += "; stopped by the error above" }
            LineLogHandler.say(.notice, line, plain: line)
        }
    }
}

/// `--stop-after-effect N`: counts side effects across the run's accounts and ends the process right
/// after the Nth with `_exit`, so nothing unwinds, flushes or commits late: a real crash.
final class EffectStop: Sendable {
    let limit: Int
    private let seen = Mutex(0)

    init(_ limit: Int) { self.limit = limit }

    /// Exit status of a stopped run: one no other path returns.
    static let status: Int32 = 86

    func count(_ effect: SideEffect) {
        let n = seen.withLock { $0 += 1; return $0 }
        guard n == limit else { return }
        FileHandle.standardError.write(Data("mailfunnel: stopped after side effect \(n) (\(effect))\n".utf8))
        _exit(Self.status)
    }

    func reportNotReached() {
        FileHandle.standardError.write(Data("mailfunnel: side effects: \(seen.withLock { $0 })\n".utf8))
    }
}

/// The more serious of two exit statuses (a configuration or usage problem outranks a data one,
/// which outranks a temporary one).
func worse(_ a: ExitStatus, _ b: ExitStatus) -> ExitStatus {
    func rank(_ s: ExitStatus) -> Int {
        switch s {
        case .ok: return 0
        case .temporaryFailure: return 1
        case .dataError: return 2
        default: return 3
        }
    }
    return rank(b) > rank(a) ? b : a
}
