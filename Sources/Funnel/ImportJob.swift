import Foundation
import Logging

/// One source → target pass, from a pair of URLs on the command line or from a configured account.
public struct ImportJob: Sendable {
    /// The account's name in logs and `status` (the config's `name`, or the source URL).
    public var name: String
    public var source: MailURL
    public var target: MailURL
    public var options: TransferOptions

    public init(name: String, source: MailURL, target: MailURL, options: TransferOptions) {
        self.name = name
        self.source = source
        self.target = target
        self.options = options
        self.options.name = name
    }

    /// Builds the transfer (opening nothing on the network yet).
    public func makeTransfer(ledger: Ledger?, logger: Logger, onEvent: @escaping (TransferEvent) -> Void) throws -> Transfer {
        if source.scheme == .maildir, target.scheme == .maildir {
            let s = absolutePath(source.path), t = absolutePath(target.path)
            // New files would show up in the listing being read and be delivered again, for ever.
            if s == t || t.hasPrefix(s + "/") || s.hasPrefix(t + "/") {
                throw FunnelError.usage("\(name): the target \(target) is the source \(source) or inside it; deliver somewhere else")
            }
        }
        let source = try Endpoints.source(self.source)
        let sink = try Endpoints.sink(target)
        return Transfer(source: source, sink: sink, ledger: ledger, options: options, logger: logger, onEvent: onEvent)
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
            options.targetMailbox = account.folder ?? target.folder ?? base.targetMailbox
            options.mailboxes = account.folders ?? base.mailboxes
            return ImportJob(name: account.name, source: account.source, target: target.url, options: options)
        }
    }
}
