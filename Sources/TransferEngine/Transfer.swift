import FunnelModel
import Foundation
import Logging

/// One side effect of a transfer, in the order the runner performs them. Tests stop the run after
/// each one in turn (mbsync's discipline) and check that a resumed run ends in the same place.
public enum SideEffect: Sendable, Equatable {
    case ledgerRecovery
    case ledgerIntents
    case sinkDeliver
    case sinkFlush
    case ledgerOutcomes
    case sourceDispose
    case ledgerDisposed
    /// The source session ended (for POP3, the QUIT that carries out the DELEs).
    case sourceClose
    case ledgerWatermark
}

/// Counters a progress display follows.
public enum TransferEvent: Sendable {
    case listed(messages: Int, bytes: Int)
    case delivered(bytes: Int)
    case skipped
    case failed
    case alreadyDone(messages: Int, bytes: Int)
    /// What a mailbox holds, when the source knows before listing it.
    case expecting(messages: Int?, bytes: Int?)
}

/// Runs the exactly-once protocol of `TransferStateMachine` for one source and one sink: recovery of
/// `pending` rows first, then every mailbox in batches.
public final class Transfer {
    public let source: MailSource
    public let sink: MailSink
    public let ledger: any Ledger
    public let options: TransferOptions
    /// The ledger's account this transfer writes under: its source into its sink (`LedgerAccount`).
    public let account: String
    let logger: Logger
    let onEvent: (TransferEvent) -> Void
    /// Called after every side effect; a test hook throws from it to simulate a crash.
    let afterEffect: (SideEffect) throws -> Void
    /// What the run has done so far: whole once `run` returns, and what was committed when it throws.
    public internal(set) var summary = RunSummary()
    let spoolBudget: SpoolBudget
    /// What becomes of each fetched message (see `DecisionStage`).
    let decisions: DecisionStage
    /// Messages of the mailbox being read found already delivered under their old UIDs (a
    /// UIDVALIDITY change): told once per mailbox, not once per message.
    var claimsInMailbox = 0
    /// The target's session being opened (`connectTargetEarly`); awaited before the sink's first use.
    var targetConnecting: Task<Void, Error>?

    /// - Parameter ledger: for a dry run, a `MemoryLedger` when no ledger file exists yet.
    public init(source: MailSource, sink: MailSink, ledger: any Ledger, options: TransferOptions,
                logger: Logger = Logger(label: "mailfunnel"),
                onEvent: @escaping (TransferEvent) -> Void = { _ in },
                afterEffect: @escaping (SideEffect) throws -> Void = { _ in }) {
        self.source = source
        self.sink = sink
        self.ledger = ledger
        self.options = options
        self.account = LedgerAccount.of(source: source.identity, target: sink.identity)
        var logger = logger
        logger[metadataKey: "account"] = "\(options.name ?? source.identity)"
        self.logger = logger
        self.onEvent = onEvent
        self.afterEffect = afterEffect
        // Prefetching plans with what each spool will reserve (`Spool.memoryCost`).
        self.spoolBudget = SpoolBudget(limit: options.spoolBudgetLimit)
        self.decisions = DecisionStage(sink: sink, ledger: ledger, rules: options.rules, logger: self.logger)
    }

    /// Runs the transfer and returns its figures. Messages that failed are counted, not thrown;
    /// what is thrown ends the account (a source that cannot be read, a sink that is gone).
    public func run() async throws -> RunSummary {
        let started = Date()
        guard source.supportedDisposals.contains(options.disposal) else {
            throw FunnelError.usage("\(source.identity) cannot \(options.disposal.rawValue) messages after delivery (it can: \(source.supportedDisposals.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        let ledgerBefore = ledger.busyTime
        func settleLedgerTime() {
            let spent = ledger.busyTime - ledgerBefore
            summary.ledgerSeconds = Double(spent.components.seconds) + Double(spent.components.attoseconds) / 1e18
        }
        let runID = options.dryRun ? nil : try await ledger.beginRun(
            account: account, name: options.name ?? source.identity, target: sink.identity)
        if options.connectTargetEarly && !options.dryRun {
            let sink = Handoff(self.sink)
            targetConnecting = Task { try await sink.value.connect() }
        }
        do {
            if !options.dryRun { try await recover(ledger) }
            try await runMailboxes(ledger: ledger)
            let committed = try await source.close()
            try afterEffect(.sourceClose)
            for (mailbox, idents) in committed where !idents.isEmpty && !options.dryRun {
                // Sources that commit at close have no UIDVALIDITY (POP3).
                try await ledger.markDisposed(idents.map { SourceKey(account: account, mailbox: mailbox, ident: $0) },
                                        how: options.disposal)
                summary.disposed += idents.count
                try afterEffect(.ledgerDisposed)
            }
            if let t = targetConnecting {
                // Never needed: nothing to deliver. Its failure is not this run's.
                targetConnecting = nil
                _ = await t.result
            }
            try await sink.close()
        } catch {
            targetConnecting?.cancel()
            summary.seconds = Date().timeIntervalSince(started)
            settleLedgerTime()
            if let runID, !(error is CancellationError) {
                try? await ledger.finishRun(runID, summary: summary, error: "\(error)")
            }
            throw error
        }
        summary.seconds = Date().timeIntervalSince(started)
        settleLedgerTime()
        if let runID {
            // Messages that failed are in the figures: the run itself went through.
            try await ledger.finishRun(runID, summary: summary, error: nil)
        }
        return summary
    }

    // MARK: mailboxes

    private func runMailboxes(ledger: any Ledger) async throws {
        var names = try await source.mailboxes()
        if let wanted = options.mailboxes {
            let missing = wanted.filter { !names.contains($0) }
            if !missing.isEmpty {
                throw FunnelError.badSource(source.identity, reason: "no mailbox named \(missing.joined(separator: ", ")) (it has: \(names.joined(separator: ", ")))")
            }
            names = wanted
        }
        for name in names {
            try Task.checkCancellation()
            try await runMailbox(name, ledger: ledger)
        }
    }

    private func runMailbox(_ mailbox: String, ledger: any Ledger) async throws {
        let info = try await source.select(mailbox: mailbox)
        onEvent(.expecting(messages: info.expectedMessages, bytes: info.expectedBytes))
        // Unless keeping, `delivered` rows are the few whose disposal a crash interrupted; the listing
        // says which are still at the source.
        var undisposed: Set<String> = []
        if options.disposal != .keep, !options.dryRun {
            undisposed = try await ledger.idents(account: account, mailbox: mailbox, uidValidity: info.uidValidity,
                                           state: .delivered)
        }
        // Each target folder is readied once for the mailbox; the account's is nil's.
        var prepared: [String: TargetWatermark] = [:]
        var watermarkHeld = false
        // List only what is above the high-water mark when the source can (IMAP, same UIDVALIDITY).
        var after: UInt32?
        // Not while some delivered messages still wait to be disposed of: they are below the mark.
        if source.supportsIncrementalListing, undisposed.isEmpty,
           let mark = try await ledger.watermark(account: account, mailbox: mailbox), mark.uidValidity == info.uidValidity {
            after = mark.highestUID
        }
        let complete = info.isComplete && after == nil
        var listedHere = 0
        claimsInMailbox = 0
        defer {
            if claimsInMailbox > 0 {
                logger.notice("\(mailbox): \(claimsInMailbox) message(s) renumbered by the server (new UIDVALIDITY) were delivered before; not delivered again")
            }
        }
        try await source.list(mailbox: mailbox, pageSize: options.pageSize, after: after) { page in
            try Task.checkCancellation()
            let known = try await ledger.entries(account: account, mailbox: mailbox, uidValidity: info.uidValidity,
                                           idents: page.map(\.ident))
            var deliver: [ListedMessage] = []
            var leftovers: [ListedMessage] = []
            var doneBytes = 0
            // With delete_after, what was delivered before this moment is due for deletion.
            let dueBefore = options.deleteAfter.map { options.clock().addingTimeInterval(-Double($0.components.seconds)) }
            for m in page {
                undisposed.remove(m.ident)
                guard let entry = known[m.ident] else { deliver.append(m); continue }
                if entry.isRetryable {
                    deliver.append(m)
                } else {
                    doneBytes += m.size ?? 0
                    let due = dueBefore.map { limit in (entry.updatedAt ?? .distantFuture) <= limit } ?? true
                    if entry.state == .delivered && options.disposal != .keep && due { leftovers.append(m) }
                }
            }
            summary.listed += page.count
            summary.earlier += page.count - deliver.count
            listedHere += page.count
            onEvent(.listed(messages: page.count, bytes: page.reduce(0) { $0 + ($1.size ?? 0) }))
            onEvent(.alreadyDone(messages: page.count - deliver.count, bytes: doneBytes))
            logger.debug("\(mailbox): \(page.count) listed, \(deliver.count) to deliver, \(leftovers.count) to dispose of")

            if options.dryRun {
                for m in deliver {
                    print("would deliver \(mailbox) \(m.ident) (\(m.size.map { "\($0) bytes" } ?? "size unknown"))")
                }
                summary.wouldDeliver = (summary.wouldDeliver ?? 0) + deliver.count
                return
            }
            if !deliver.isEmpty { try await skipOverLimit(&deliver, mailbox: mailbox, uidValidity: info.uidValidity) }
            guard !deliver.isEmpty || !leftovers.isEmpty else { return }
            // Content reconciliation only across a UIDVALIDITY change and never when deleting (see
            // `DecisionStage`); when the ledger holds nothing under another UIDVALIDITY, no query per message.
            var reconcile = false
            if options.disposal != .delete {
                reconcile = try await ledger.hasDeliveriesOutside(account: account, mailbox: mailbox, uidValidity: info.uidValidity)
            }
            let runner = PageRunner(transfer: self, deliver: deliver, leftovers: leftovers, mailbox: mailbox, info: info,
                                    reconcile: reconcile) { folder in
                let target = folder ?? self.options.targetMailbox ?? mailbox
                if let watermark = prepared[target] { return (target, watermark) }
                try await self.targetConnected()
                let watermark = try await self.sink.prepare(mailbox: target)
                prepared[target] = watermark
                return (target, watermark)
            }
            let pageWatermark = try await runner.run()
            // The high-water mark moves only while every earlier page is settled.
            if !watermarkHeld, let mark = pageWatermark {
                try await ledger.setWatermark(SourceWatermark(uidValidity: info.uidValidity, highestUID: mark.uid),
                                              account: account, mailbox: mailbox)
                try afterEffect(.ledgerWatermark)
                watermarkHeld = !mark.pageSettled
            }
        }
        if after != nil, let holds = info.expectedMessages, holds > listedHere {
            // Below the high-water mark, unlisted: every one settled by an earlier run.
            summary.listed += holds - listedHere
            summary.earlier += holds - listedHere
        }
        if options.disposal == .delete && complete && !undisposed.isEmpty {
            // Delivered but gone from a complete listing: a run deleted it and stopped before it
            // could record so. Record it now, or it would read as `delivered` for ever.
            try await ledger.markDisposed(undisposed.sorted().map {
                SourceKey(account: account, mailbox: mailbox, uidValidity: info.uidValidity, ident: $0)
            }, how: .delete)
            try afterEffect(.ledgerDisposed)
        }
    }
}

extension Transfer {
    /// Messages whose listed size (RFC822.SIZE, POP3 LIST) is over the target's limit are skipped
    /// before they are fetched: a large body is not downloaded to be refused. The target's session
    /// is opened for it, as the limit is known only then and delivery needs it anyway.
    func skipOverLimit(_ deliver: inout [ListedMessage], mailbox: String, uidValidity: UInt32) async throws {
        guard deliver.contains(where: { $0.size != nil }) else { return }
        try await targetConnected()
        try await sink.connect()
        guard let limit = sink.maxMessageSize else { return }
        let over = deliver.filter { ($0.size ?? 0) > limit }
        guard !over.isEmpty else { return }
        deliver.removeAll { ($0.size ?? 0) > limit }
        var outcomes: [DeliveryOutcome] = []
        for m in over {
            let reason = "\(m.size!) bytes as listed is larger than \(sink.identity) accepts (\(limit))"
            logger.warning("\(mailbox) \(m.ident): \(reason); skipped without downloading it")
            outcomes.append(.skipped(SourceKey(account: account, mailbox: mailbox, uidValidity: uidValidity, ident: m.ident),
                                     reason: reason, sha256: nil, size: m.size))
        }
        try await ledger.record(outcomes)
        summary.skipped += over.count
        for _ in over { onEvent(.skipped) }
    }
}

/// A transfer that stopped early because its sink or source failed; what was delivered is recorded.
public struct TransferStopped: Error, CustomStringConvertible {
    public var account: String
    public var target: String
    public var error: DeliveryError

    public var description: String { "\(account) → \(target): stopped: \(error.message)" }
}
