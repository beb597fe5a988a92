import LedgerSQLite
import TransferEngine
import Drivers
import FunnelModel
import Foundation
import Logging
import MailTransport

/// One source → target pass, from a pair of URLs on the command line or from a configured account.
public struct ImportJob: Sendable {
    /// The account's name in logs and `status` (the config's `name`, or the source URL).
    public var name: String
    public var source: MailURL
    public var target: MailURL
    public var options: TransferOptions
    public var sourceSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_SOURCE_PASSWORD")
    public var targetSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_TARGET_PASSWORD")

    public init(name: String, source: MailURL, target: MailURL, options: TransferOptions) {
        self.name = name
        self.source = source
        self.target = target
        self.options = options
        self.options.name = name
        // An IMAP target URL's folder is where everything goes, unless --into says otherwise.
        if (target.scheme == .imap || target.scheme == .imaps), !target.path.isEmpty, self.options.targetMailbox == nil {
            self.options.targetMailbox = target.path
        }
    }

    /// The job for one end of an account and one target as the user gave them (the command line's
    /// two arguments), each resolved to what it names; named after the source as resolved.
    public static func resolving(source: GivenEndpoint, target: GivenEndpoint, options: TransferOptions,
                                 resolver: any EndpointResolver = URLResolver()) async throws -> ImportJob {
        let s = try await resolver.resolve(source, as: .source)
        let t = try await resolver.resolve(target, as: .target)
        var job = ImportJob(name: s.url.description, source: s.url, target: t.url, options: options)
        job.sourceSettings = s.settings
        job.targetSettings = t.settings
        return job
    }

    /// Starts loading the trust roots its connections will use (see `TLSContexts`), so that start-up
    /// work such as opening the ledger goes on meanwhile.
    public func prepareTLS() {
        for (url, settings) in [(source, sourceSettings), (target, targetSettings)] where url.scheme.isNetwork {
            guard let endpoint = try? settings.endpoint(for: url, who: name), endpoint.tls != .none else { continue }
            TLSContexts.prepare(caFile: endpoint.caFile)
        }
    }

    /// The source's identity: its URL without secrets or folder. Locks are per source account, as
    /// deleting at a source is one run's business whatever the target.
    public var accountIdentity: String { Endpoints.identity(of: source) }

    /// The ledger's account: the source into the target (`LedgerAccount`).
    public var ledgerAccount: String { LedgerAccount.of(source: accountIdentity, target: Endpoints.identity(of: target)) }

    /// This job's account lock (`AccountLocks`): taken at once, or, with `wait`, as soon as the
    /// process holding it lets go.
    public func lock(in locks: AccountLocks, command: String, wait: Bool, logger: Logger) async throws -> AccountLock {
        guard wait else { return try locks.hold(account: accountIdentity, name: name, command: command) }
        return try await locks.hold(account: accountIdentity, name: name, command: command) { holder in
            logger.notice("\(name): another run is working on this account: \(holder); waiting for it")
        }
    }

    /// Builds the transfer (opening nothing on the network yet).
    public func makeTransfer(ledger: any Ledger, logger: Logger, onEvent: @escaping (TransferEvent) -> Void,
                             afterEffect: @escaping (SideEffect) throws -> Void = { _ in }) throws -> Transfer {
        if source.scheme == .maildir, target.scheme == .maildir {
            let s = absolutePath(source.path), t = absolutePath(target.path)
            // New files would show up in the listing being read and be delivered again, for ever.
            if s == t || t.hasPrefix(s + "/") || s.hasPrefix(t + "/") {
                throw FunnelError.usage("\(name): the target \(target) is the source \(source) or inside it; deliver somewhere else")
            }
        }
        if [.imap, .imaps].contains(source.scheme), [.imap, .imaps].contains(target.scheme),
           source.host.lowercased() == target.host.lowercased(), source.port == target.port,
           source.user?.lowercased() == target.user?.lowercased(),
           source.path.isEmpty || options.targetMailbox == nil || source.path == options.targetMailbox {
            // Every run would find its own deliveries as new mail and deliver them again.
            throw FunnelError.usage("\(name): the target \(target) is the same account as the source; name a source folder and a different target folder, or deliver elsewhere")
        }
        let source = try Endpoints.source(self.source, settings: sourceSettings, disposal: options.disposal, logger: logger)
        let sink = try Endpoints.sink(target, settings: targetSettings, logger: logger)
        return Transfer(source: source, sink: sink, ledger: ledger, options: options, logger: logger, onEvent: onEvent,
                        afterEffect: afterEffect)
    }
}

extension Config {
    /// The jobs for the named accounts (all when `names` is empty), each with its target and options.
    public func importJobs(accounts names: [String], base: TransferOptions) throws -> [ImportJob] {
        let unknown = names.filter { n in !accounts.contains { $0.name == n } }
        if !unknown.isEmpty {
            throw FunnelError.config(file: file, line: nil, key: "accounts",
                                     message: "no account named \(unknown.joined(separator: ", ")); accounts: \(accounts.map(\.name).joined(separator: ", "))")
        }
        return accounts.filter { names.isEmpty || names.contains($0.name) }.map { account in
            let target = targets[account.target]!
            var options = base
            options.disposal = account.afterDelivery
            options.deleteAfter = account.afterDelivery == .delete ? account.deleteAfter : nil
            options.targetMailbox = account.folder ?? target.folder ?? base.targetMailbox
            options.mailboxes = account.folders ?? base.mailboxes
            var job = ImportJob(name: account.name, source: account.source, target: target.url, options: options)
            job.sourceSettings.secret = account.secret
            job.sourceSettings.caFile = account.caFile
            job.sourceSettings.tls = account.tls
            job.sourceSettings.loginMethods = account.loginMethods
            job.sourceSettings.timeout = account.timeout
            job.targetSettings.secret = target.secret
            job.targetSettings.caFile = target.caFile
            job.targetSettings.tls = target.tls
            job.targetSettings.loginMethods = target.loginMethods
            job.targetSettings.timeout = target.timeout
            job.targetSettings.envelopeTo = target.envelopeTo
            return job
        }
    }
}
