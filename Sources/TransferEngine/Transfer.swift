import FunnelModel
import Foundation
import Logging
import MailMessage

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

/// How one account is transferred.
public struct TransferOptions: Sendable {
    public var disposal: Disposal = .keep
    public var dryRun = false
    /// Deliver every mailbox into this one (`--into`, `folder`); nil keeps the source's names.
    public var targetMailbox: String?
    /// Read only these source mailboxes; nil reads all.
    public var mailboxes: [String]?
    public var limits = TransferStateMachine.Limits()
    /// With `.delete`: keep delivered messages at the source this long, then delete them (POP3's
    /// "leave on server for N days"). Nil deletes right after delivery.
    public var deleteAfter: Duration?
    /// How many messages are listed and looked up in the ledger at a time.
    public var pageSize = 5000
    /// Fetch the next batches while the current one is delivered.
    public var prefetch = true
    /// How many batches may be fetched ahead of the one being delivered.
    public var prefetchDepth = 3
    /// What the spools of this transfer may hold in memory together (as allocated: see
    /// `Spool.memoryCost`); the rest goes to temporary files. With batches of at most 2 MiB, this
    /// is what bounds peak memory: 8 MiB keeps 50,000-message imports under 64 MB of RSS while
    /// a batch of large messages, slow to fetch, still finds the next ones in hand.
    public var spoolMemory = 8 << 20
    /// The shared spool budget: `spoolMemory`, and headroom for spools that find more lines to
    /// normalise than foreseen and grow a little past their planned share (rather than going to
    /// a temporary file: a new inode, about 150 µs on this ext4, and an extra write and read).
    public var spoolBudgetLimit: Int { spoolMemory + spoolMemory / 8 }
    public var spool = Spool.Options()
    /// A display name for logs and `status` (the config's account name).
    public var name: String?
    /// Connect to the target while the source is connected and listed, rather than when the first
    /// batch is fetched: for `import`, which has work to do. Not for the daemon, whose passes
    /// mostly find nothing new and should not log in to the target for nothing.
    public var connectTargetEarly = false
    /// What "now" is for `deleteAfter`; tests pass another.
    public var clock: @Sendable () -> Date = { Date() }

    public init() {}
}

/// Runs the exactly-once protocol of `TransferStateMachine` for one source and one sink: recovery of
/// `pending` rows first, then every mailbox in batches.
public final class Transfer {
    public let source: MailSource
    public let sink: MailSink
    public let ledger: any Ledger
    public let options: TransferOptions
    private let logger: Logger
    private let onEvent: (TransferEvent) -> Void
    /// Called after every side effect; a test hook throws from it to simulate a crash.
    private let afterEffect: (SideEffect) throws -> Void
    private var summary = RunSummary()
    private let spoolBudget: SpoolBudget
    /// Prior copies claimed in this run, so two identical new messages never claim the same one.
    private var claimed: Set<SourceKey> = []
    /// The target's session being opened (`connectTargetEarly`); awaited before the sink's first use.
    private var targetConnecting: Task<Void, Error>?

    /// - Parameter ledger: for a dry run, a `MemoryLedger` when no ledger file exists yet.
    public init(source: MailSource, sink: MailSink, ledger: any Ledger, options: TransferOptions,
                logger: Logger = Logger(label: "mailfunnel"),
                onEvent: @escaping (TransferEvent) -> Void = { _ in },
                afterEffect: @escaping (SideEffect) throws -> Void = { _ in }) {
        self.source = source
        self.sink = sink
        self.ledger = ledger
        self.options = options
        var logger = logger
        logger[metadataKey: "account"] = "\(options.name ?? source.identity)"
        self.logger = logger
        self.onEvent = onEvent
        self.afterEffect = afterEffect
        // Prefetching plans with what each spool will reserve (`Spool.memoryCost`).
        self.spoolBudget = SpoolBudget(limit: options.spoolBudgetLimit)
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
            account: source.identity, name: options.name ?? source.identity, target: sink.identity)
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
                try await ledger.markDisposed(idents.map { SourceKey(account: source.identity, mailbox: mailbox, ident: $0) },
                                        how: options.disposal)
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
            let problem = summary.failed > 0 ? "\(summary.failed) message(s) failed" : nil
            try await ledger.finishRun(runID, summary: summary, error: problem)
        }
        return summary
    }

    // MARK: recovery

    /// Decides every `pending` row of this account for this target: present at the target →
    /// `delivered`; absent → retryable, delivered again in this run.
    func recover(_ ledger: any Ledger) async throws {
        let pending = try await ledger.pending(account: source.identity)
        guard !pending.isEmpty else { return }
        try await targetConnected()
        var outcomes: [DeliveryOutcome] = []
        var found: Set<String> = []
        for record in pending {
            guard record.target == sink.identity else {
                logger.warning("pending message \(record.key) was bound for \(record.target), not \(sink.identity); left pending until that target is used again")
                continue
            }
            let refs = try await ledger.deliveredRefs(target: record.target, targetMailbox: record.targetMailbox, sha256: record.sha256)
            let taken = found.union(refs.filter { !$0.isEmpty })
            switch try await sink.locate(record, taken: taken, unknownCopies: refs.filter(\.isEmpty).count) {
            case let .present(ref):
                logger.notice("recovery: \(record.key) found at the target (\(ref)); recorded as delivered")
                if !ref.isEmpty { found.insert(ref) }
                outcomes.append(.delivered(record.key, targetRef: ref))
            case .absent:
                logger.notice("recovery: \(record.key) not at the target; it will be delivered again")
                outcomes.append(.failed(record.key, DeliveryError(.temporary, "interrupted before delivery was confirmed")))
            }
        }
        try await ledger.record(outcomes)
        try afterEffect(.ledgerRecovery)
    }

    /// Waits for the early connection to the target, if one was started; its error is the sink's.
    private func targetConnected() async throws {
        guard let t = targetConnecting else { return }
        targetConnecting = nil
        try await t.value
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
            undisposed = try await ledger.idents(account: source.identity, mailbox: mailbox, uidValidity: info.uidValidity,
                                           state: .delivered)
        }
        var prepared: (mailbox: String, watermark: TargetWatermark)?
        var watermarkHeld = false
        // List only what is above the high-water mark when the source can (IMAP, same UIDVALIDITY).
        var after: UInt32?
        // Not while some delivered messages still wait to be disposed of: they are below the mark.
        if source.supportsIncrementalListing, undisposed.isEmpty,
           let mark = try await ledger.watermark(account: source.identity, mailbox: mailbox), mark.uidValidity == info.uidValidity {
            after = mark.highestUID
        }
        let complete = info.isComplete && after == nil
        try await source.list(mailbox: mailbox, pageSize: options.pageSize, after: after) { page in
            try Task.checkCancellation()
            let known = try await ledger.entries(account: source.identity, mailbox: mailbox, uidValidity: info.uidValidity,
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
            guard !deliver.isEmpty || !leftovers.isEmpty else { return }
            let pageWatermark = try await runBatches(deliver: deliver, leftovers: leftovers, mailbox: mailbox, info: info,
                                                     ledger: ledger) {
                if let prepared { return prepared }
                let target = options.targetMailbox ?? mailbox
                try await targetConnected()
                let ready = (mailbox: target, watermark: try await sink.prepare(mailbox: target))
                prepared = ready
                return ready
            }
            // The high-water mark moves only while every earlier page is settled.
            if !watermarkHeld, let mark = pageWatermark {
                try await ledger.setWatermark(SourceWatermark(uidValidity: info.uidValidity, highestUID: mark.uid),
                                              account: source.identity, mailbox: mailbox)
                try afterEffect(.ledgerWatermark)
                watermarkHeld = !mark.pageSettled
            }
        }
        if options.disposal == .delete && complete && !undisposed.isEmpty {
            // Delivered but gone from a complete listing: a run deleted it and stopped before it
            // could record so. Record it now, or it would read as `delivered` for ever.
            try await ledger.markDisposed(undisposed.sorted().map {
                SourceKey(account: source.identity, mailbox: mailbox, uidValidity: info.uidValidity, ident: $0)
            }, how: .delete)
            try afterEffect(.ledgerDisposed)
        }
    }

    /// Runs the state machine over one page; returns where the high-water mark may move.
    /// - Parameter prepareTarget: readies the target mailbox (the first time); called while the
    ///   first batch is being fetched.
    private func runBatches(deliver: [ListedMessage], leftovers: [ListedMessage], mailbox: String, info: MailboxInfo,
                            ledger: any Ledger,
                            prepareTarget: () async throws -> (mailbox: String, watermark: TargetWatermark))
        async throws -> (uid: UInt32, pageSettled: Bool)? {
        let uidValidity = info.uidValidity
        // Content reconciliation only across a UIDVALIDITY change and never when deleting (see
        // `prepare`); when the ledger holds nothing under another UIDVALIDITY, no query per message.
        var mayReconcile = false
        if options.disposal != .delete {
            mayReconcile = try await ledger.hasDeliveriesOutside(account: source.identity, mailbox: mailbox, uidValidity: uidValidity)
        }
        var machine = TransferStateMachine(deliver: deliver, leftovers: leftovers, disposal: options.disposal,
                                           limits: options.limits, disposeNewDeliveries: options.deleteAfter == nil)
        var spools: [Int: SpooledMessage] = [:]
        var pageWatermark: (uid: UInt32, pageSettled: Bool)?
        func key(_ i: Int) -> SourceKey {
            SourceKey(account: source.identity, mailbox: mailbox, uidValidity: uidValidity,
                      ident: machine.messages[i].ident)
        }

        // The batch whose intents are committed while the one before it is flushed (see below).
        var early: (range: Range<Int>, task: Task<Handoff<EarlyBatch>, Error>)?
        // The next batches are fetched while this one is delivered: fetching only reads the source,
        // and nothing about a prefetched batch is recorded until its turn comes. Up to
        // `prefetchDepth` are fetched ahead, one after another on the one connection, so a small
        // batch's short flush does not leave the next fetch waiting. The source is never used by
        // two tasks at once: the runner waits for the fetches ahead before any other call on it.
        var ahead: [(range: Range<Int>, task: Task<Handoff<[FetchResult]>, Error>)] = []
        var lastFetch: Task<Handoff<[FetchResult]>, Error>?
        // The batches fetched ahead, in the order started: as each one's response ends, the
        // source may already ask for the next (see `MailSource.fetch(_:mailbox:upcoming:makeSpool:)`).
        let plan = FetchPlan()
        // With nothing disposed of between batches, the source may ask for a batch and every one
        // after it at once, and hand them out a call at a time (`MailSource.fetch`'s `horizon`):
        // the page's batches, as the machine will ask for them if all goes well.
        let pageBatches: [Range<Int>] = {
            guard options.disposal == .keep else { return [] }
            var all: [Range<Int>] = []
            var next = machine.upcomingBatch
            while let r = next {
                all.append(r)
                next = machine.batch(after: r)
            }
            return all
        }()
        let listed = machine.messages
        func horizon(after range: Range<Int>) -> @Sendable () -> [[ListedMessage]] {
            guard let i = pageBatches.firstIndex(of: range) else { return { [] } }
            let later = pageBatches[(i + 1)...]
            return { later.map { Array(listed[$0]) } }
        }
        func startPrefetch(_ wanted: Range<Int>? = nil) {
            guard options.prefetch else { return }
            // After the last batch fetched ahead, whether it is still in `ahead` or in `early`.
            let lastAhead = ahead.last?.range ?? early?.range
            var next = wanted ?? (lastAhead.map { machine.batch(after: $0) } ?? machine.upcomingBatch)
            // What the batches in hand may hold in memory (a message over the spool's memory
            // limit goes to its file): a further batch is fetched ahead only if the spool budget
            // has room for it, so fetching ahead never pushes spools onto disk.
            let spool = spoolOptions
            func inMemory(_ r: Range<Int>) -> Int {
                machine.messages[r].reduce(0) { $0 + Spool.memoryCost(expectedSize: $1.size ?? 0, options: spool) }
            }
            // The batch in hand counts for the spools it still holds (see `readsMessagesAtFlush`).
            var held = machine.batchIndices.reduce(0) { sum, i in
                sum + (spools[i] == nil ? 0 : Spool.memoryCost(expectedSize: machine.messages[i].size ?? 0, options: spool))
            } + ahead.reduce(0) { $0 + inMemory($1.range) }
                + (early.map { inMemory($0.range) } ?? 0)
            while ahead.count + (early == nil ? 0 : 1) < options.prefetchDepth, let range = next {
                let bytes = inMemory(range)
                if !ahead.isEmpty || early != nil, held + bytes > options.spoolMemory { break }
                held += bytes
                let source = Handoff(self.source)
                let messages = Array(machine.messages[range])
                let spoolOptions = self.spoolOptions
                // After the fetch started last, wherever it went (into `early`, or consumed).
                let before = lastFetch
                plan.add(range, messages)
                let later = horizon(after: range)
                let task = Task { [plan] in
                    if let before { _ = await before.result }
                    return Handoff(try await source.value.fetch(messages, mailbox: mailbox, upcoming: { plan.after(range) },
                                                                horizon: later) {
                        Spool(options: spoolOptions)
                    })
                }
                lastFetch = task
                ahead.append((range, task))
                next = machine.batch(after: range)
            }
        }
        func drainAhead() async {
            for p in ahead { _ = await p.task.result }
            // Fetches run one after another: when the last one started is done, all are.
            if let t = lastFetch { _ = await t.result }
        }

        var action = machine.start()
        // The first batch is fetched while the target is readied (connecting, logging in, SELECT).
        if case let .fetch(range) = action { startPrefetch(range) }
        let target: (mailbox: String, watermark: TargetWatermark)
        do {
            target = try await prepareTarget()
        } catch {
            await drainAhead()
            throw error
        }
        let targetMailbox = target.mailbox
        let watermark = target.watermark

        // While the sink flushes a batch, the next one's intents are committed (`pending` before
        // delivery is all the protocol asks; if this batch fails they are withdrawn, and after a
        // crash recovery finds them absent). The ledger's fsync then overlaps the server's work.
        var intentsCommitted: Range<Int>?
        func startEarlyIntents() {
            guard let p = ahead.first, early == nil, !mayReconcile else { return }
            ahead.removeFirst()
            let range = p.range
            let keys = Handoff(range.map(key))
            let limit = sink.maxMessageSize
            let sinkID = sink.identity
            early = (range, Task {
                let results = try await p.task.value.value
                var batch = EarlyBatch(results: results)
                var pending: [PendingIntent] = []
                var outcomes: [DeliveryOutcome] = []
                for (j, result) in results.enumerated() {
                    let k = keys.value[j]
                    switch result {
                    case let .failed(_, error):
                        batch.preparations.append(.fetchFailed(error))
                        outcomes.append(.failed(k, error))
                    case let .spooled(m, spooled):
                        if let limit, spooled.size > limit {
                            let reason = "\(spooled.size) bytes is larger than \(sinkID) accepts (\(limit))"
                            batch.preparations.append(.skip(reason: reason))
                            outcomes.append(.skipped(k, reason: reason, sha256: nil, size: m.size))
                        } else {
                            batch.preparations.append(.deliver)
                            pending.append(PendingIntent(key: k, sha256: spooled.sha256, size: spooled.size,
                                                         messageID: spooled.messageID, target: sinkID,
                                                         targetMailbox: targetMailbox, watermark: watermark))
                        }
                    }
                }
                try await ledger.commitIntents(pending: pending, claims: [], outcomes: outcomes)
                return Handoff(batch)
            })
        }
        // Outcomes are committed while the next batches are delivered when nothing waits for them:
        // keeping (no disposal follows) they only have to be on disk before the high-water mark
        // moves; a crash before that leaves them `pending`, and recovery finds them at the target.
        // Each batch's commit waits for the one before, and at most `lateBatches` are in flight.
        var lateOutcomes: [Task<Void, Error>] = []
        let lateBatches = 3
        // What the last flush left to do before its deliveries are durable (a Maildir's syncs and
        // moves into place: `MailSink.flushLeavingSettlement`): done with that batch's outcomes,
        // in the background when they are late, so the next batches are written meanwhile.
        var settlement: Settlement?
        let account = options.name ?? source.identity, sinkIdentity = sink.identity
        /// Waits for the oldest late commits until at most `keeping` are left.
        func settleOutcomes(keeping: Int = 0) async throws {
            if let s = settlement {
                settlement = nil
                try Self.settle(s, account: account, target: sinkIdentity)
            }
            while lateOutcomes.count > keeping {
                let t = lateOutcomes.removeFirst()
                try await t.value
                try afterEffect(.ledgerOutcomes)
            }
        }

        do {
        while true {
            switch action {
            case let .dispose(indices):
                let wanted = indices.map { machine.messages[$0] }
                try await settleOutcomes()
                await drainAhead()
                if let e = early { _ = await e.task.result }
                do {
                    let done = Set(try await source.dispose(wanted, mailbox: mailbox, how: options.disposal))
                    try afterEffect(.sourceDispose)
                    action = machine.disposed(indices.filter { done.contains(machine.messages[$0].ident) })
                } catch let error as DeliveryError {
                    logger.error("\(mailbox): could not \(options.disposal.rawValue) delivered messages at the source: \(error.message)")
                    action = machine.disposeFailed(error)
                }

            case let .fetch(range):
                try Task.checkCancellation()
                let results: [FetchResult]
                if let e = early {
                    early = nil
                    let batch = try await e.task.value.value
                    if e.range == range {
                        for (i, (result, preparation)) in zip(range, zip(batch.results, batch.preparations)) {
                            switch (result, preparation) {
                            case let (.failed(m, error), _):
                                logger.error("\(mailbox) \(m.ident): cannot be read at the source: \(error.message)")
                            case let (.spooled(_, spooled), .deliver):
                                spools[i] = spooled
                            case let (.spooled, .skip(reason)):
                                logger.warning("\(key(i)): skipped: \(reason)")
                            default: break
                            }
                        }
                        intentsCommitted = range
                        action = machine.fetched(batch.preparations)
                        continue
                    }
                    // Not expected (the machine asks for the batch it announced): fetch it afresh.
                    await drainAhead()
                    ahead.removeAll()
                    plan.clear()
                    results = try await source.fetch(Array(machine.messages[range]), mailbox: mailbox) { [o = spoolOptions] in
                        Spool(options: o)
                    }
                } else if let p = ahead.first {
                    ahead.removeFirst()
                    if p.range != range { await drainAhead(); ahead.removeAll(); plan.clear() }
                    let fetched = try await p.task.value.value
                    if p.range == range {
                        results = fetched
                    } else {
                        results = try await source.fetch(Array(machine.messages[range]), mailbox: mailbox) { [o = spoolOptions] in
                            Spool(options: o)
                        }
                    }
                } else {
                    results = try await source.fetch(Array(machine.messages[range]), mailbox: mailbox) { [o = spoolOptions] in
                        Spool(options: o)
                    }
                }
                var preparations: [TransferStateMachine.Preparation] = []
                for (i, result) in zip(range, results) {
                    switch result {
                    case let .failed(m, error):
                        logger.error("\(mailbox) \(m.ident): cannot be read at the source: \(error.message)")
                        preparations.append(.fetchFailed(error))
                    case let .spooled(_, spooled):
                        preparations.append(try await prepare(spooled, key: key(i), uidValidity: uidValidity,
                                                        mayReconcile: mayReconcile, ledger: ledger))
                        switch preparations.last {
                        case .deliver?, .claim?: spools[i] = spooled
                        default: break
                        }
                    }
                }
                action = machine.fetched(preparations)

            case let .commitIntents(indices):
                var pending: [PendingIntent] = []
                var claims: [Claim] = []
                var outcomes: [DeliveryOutcome] = []
                for i in indices {
                    switch machine.preparation(i) {
                    case .deliver:
                        let s = spools[i]!
                        pending.append(PendingIntent(key: key(i), sha256: s.sha256, size: s.size, messageID: s.messageID,
                                                     target: sink.identity, targetMailbox: targetMailbox,
                                                     watermark: watermark))
                    case let .claim(prior, ref):
                        let s = spools[i]!
                        claims.append(Claim(key: key(i), prior: PriorCopy(key: prior, targetRef: ref, messageID: s.messageID),
                                            target: sink.identity, targetMailbox: targetMailbox,
                                            sha256: s.sha256, size: s.size))
                    case let .skip(reason):
                        outcomes.append(.skipped(key(i), reason: reason, sha256: nil, size: machine.messages[i].size))
                    case let .fetchFailed(error):
                        outcomes.append(.failed(key(i), error))
                    case nil:
                        break
                    }
                }
                if intentsCommitted.map({ indices.first.map($0.contains) ?? true }) != true {
                    try await ledger.commitIntents(pending: pending, claims: claims, outcomes: outcomes)
                }
                intentsCommitted = nil
                try afterEffect(.ledgerIntents)
                for i in indices {
                    switch machine.preparation(i) {
                    case .claim: onEvent(.alreadyDone(messages: 1, bytes: machine.messages[i].size ?? 0))
                    case .skip: summary.skipped += 1; onEvent(.skipped)
                    case .fetchFailed: summary.failed += 1; onEvent(.failed)
                    default: break
                    }
                }
                action = machine.intentsCommitted()
                startPrefetch()

            case let .deliver(i):
                let spooled = spools[i]!
                // Unless the sink reads it again at flush, the spool is done with once delivered
                // (or refused), and its memory goes to the batches fetched ahead.
                if !sink.readsMessagesAtFlush { spools[i] = nil }
                do {
                    let receipt = try await sink.deliver(spooled, key: key(i), mailbox: targetMailbox)
                    try afterEffect(.sinkDeliver)
                    // The memory let go of so far may make room for the next batch to be fetched.
                    if !sink.readsMessagesAtFlush && i % 16 == 15 { startPrefetch() }
                    switch receipt {
                    case let .delivered(ref): action = machine.delivered(i, ref: ref)
                    case .staged: action = machine.staged(i)
                    }
                } catch let error as DeliveryError {
                    logger.error("\(mailbox) \(machine.messages[i].ident): delivery to \(sink.identity) failed: \(error.message)")
                    action = machine.deliveryFailed(i, error)
                }

            case .flush:
                startEarlyIntents()
                // The delivered batch's spools may have been let go of: fetch ahead into them.
                if !sink.readsMessagesAtFlush { startPrefetch() }
                do {
                    let (outcomes, settle) = try await sink.flushLeavingSettlement()
                    settlement = settle
                    try afterEffect(.sinkFlush)
                    for i in machine.batchIndices {
                        switch outcomes[key(i)] {
                        case let .delivered(ref)?: machine.resolved(i, .delivered(ref))
                        case let .failed(error)?:
                            logger.error("\(mailbox) \(machine.messages[i].ident): delivery to \(sink.identity) failed: \(error.message)")
                            machine.resolved(i, .failed(error))
                        case nil: break
                        }
                    }
                    spools.removeAll()
                    action = machine.flushed()
                } catch let error as DeliveryError {
                    logger.error("\(sink.identity): could not make deliveries durable: \(error.message)")
                    action = machine.flushFailed(error)
                }

            case let .commitOutcomes(indices):
                var outcomes: [DeliveryOutcome] = []
                for i in indices {
                    switch machine.outcome(i) {
                    case let .delivered(ref)?: outcomes.append(.delivered(key(i), targetRef: ref))
                    case let .failed(error)?: outcomes.append(.failed(key(i), error))
                    case nil: break
                    }
                }
                let settle = settlement
                settlement = nil
                let late = options.disposal == .keep && options.prefetch
                try await settleOutcomes(keeping: late ? lateBatches - 1 : 0)
                if late {
                    lateOutcomes.append(Self.commitLater(outcomes, after: settle, behind: lateOutcomes.last,
                                                         account: account, target: sinkIdentity, ledger))
                } else {
                    try await Self.commit(outcomes, after: settle, account: account, target: sinkIdentity, ledger)
                    try afterEffect(.ledgerOutcomes)
                }
                for i in indices {
                    switch machine.outcome(i) {
                    case .delivered?:
                        summary.delivered += 1
                        summary.bytes += machine.messages[i].size ?? 0
                        onEvent(.delivered(bytes: machine.messages[i].size ?? 0))
                    case let .failed(error)?:
                        summary.failed += 1
                        if error.errorClass != .permanent { summary.deferred += 1 }
                        onEvent(.failed)
                    case nil: break
                    }
                }
                action = machine.outcomesCommitted()

            case let .commitDisposed(indices):
                try await settleOutcomes()
                try await ledger.markDisposed(indices.map(key), how: options.disposal)
                try afterEffect(.ledgerDisposed)
                action = machine.disposedCommitted()

            case let .moveWatermark(uid):
                // Moved by the caller, after the page, and only while every earlier page is settled.
                let highest = machine.messages.compactMap { m -> UInt32? in
                    if case let .uid(u) = m.locator { return u } else { return nil }
                }.max() ?? uid
                pageWatermark = (uid, uid >= highest)
                action = machine.watermarkMoved()

            case let .finished(error):
                try await settleOutcomes()
                await drainAhead()
                if let e = early, case let .success(batch) = await e.task.result {
                    // The batch stopped before the one whose intents were committed early: those
                    // were never attempted. Withdrawn as temporary failures, as the state machine
                    // does for the rest of a failed batch, so they are retried without recovery.
                    let why = "not attempted: \(error?.message ?? "delivery stopped")"
                    let withdrawn = zip(e.range, batch.value.preparations).compactMap { i, p -> DeliveryOutcome? in
                        p == .deliver ? .failed(key(i), DeliveryError(.temporary, why)) : nil
                    }
                    try await ledger.record(withdrawn)
                    summary.failed += withdrawn.count
                    summary.deferred += withdrawn.count
                    for p in batch.value.preparations {
                        switch p {
                        case .skip: summary.skipped += 1
                        case .fetchFailed: summary.failed += 1
                        default: break
                        }
                    }
                }
                early = nil
                if let error {
                    throw TransferStopped(account: options.name ?? source.identity, target: sink.identity, error: error)
                }
                return pageWatermark
            }
        }
        } catch {
            await drainAhead()
            if let e = early { _ = await e.task.result }
            for t in lateOutcomes { _ = await t.result }
            // Delivered but not yet durable: made so, so that recovery finds them next time
            // rather than delivering them again.
            if let s = settlement { try? s.run() }
            throw error
        }
    }

    /// Records a batch's outcomes once what its flush left is done.
    private static func commit(_ outcomes: [DeliveryOutcome], after settle: Settlement?, account: String, target: String,
                               _ ledger: any Ledger) async throws {
        if let settle { try Self.settle(settle, account: account, target: target) }
        try await ledger.record(outcomes)
    }

    /// `commit` in a task of its own, while the runner goes on: the settlement at once (with those
    /// of the batches queued beside it: they share their syncs), the outcomes once `previous`'s are
    /// recorded (one transaction with whatever else the ledger has queued). Chained settle-then-record,
    /// batch after batch, these were a Maildir import's critical path: 5.8 ms a batch at 50,000 messages.
    private static func commitLater(_ outcomes: [DeliveryOutcome], after settle: Settlement?, behind previous: Task<Void, Error>?,
                                    account: String, target: String, _ ledger: any Ledger) -> Task<Void, Error> {
        Task {
            if let settle {
                do {
                    try await settle.runQueued()
                } catch let error as DeliveryError {
                    throw TransferStopped(account: account, target: target, error: error)
                }
            }
            // Settled in any order (several at once), recorded in order.
            try await previous?.value
            try await ledger.record(outcomes)
        }
    }

    /// Runs what a flush left to do; the sink failing then stops the transfer, as a failed flush
    /// would have: the batch's rows stay `pending`, and recovery decides.
    private static func settle(_ settle: Settlement, account: String, target: String) throws {
        do {
            try settle.run()
        } catch let error as DeliveryError {
            throw TransferStopped(account: account, target: target, error: error)
        }
    }

    private var spoolOptions: Spool.Options {
        var o = options.spool
        o.normalizeToCRLF = sink.requiresCRLF
        if o.budget == nil { o.budget = spoolBudget }
        return o
    }

    /// Deliver, claim a prior copy, or skip: decided once the content is known.
    private func prepare(_ spooled: SpooledMessage, key: SourceKey, uidValidity: UInt32, mayReconcile: Bool,
                         ledger: any Ledger) async throws -> TransferStateMachine.Preparation {
        if let limit = sink.maxMessageSize, spooled.size > limit {
            logger.warning("\(key): \(spooled.size) bytes is over the target's limit of \(limit); skipped")
            return .skip(reason: "\(spooled.size) bytes is larger than \(sink.identity) accepts (\(limit))")
        }
        // Reconcile by content only across a change of key epoch (a new UIDVALIDITY): within one
        // epoch an unlisted key means the message left the source, and an identical newcomer is a
        // second message. Never when deleting: a copy deleted by a run that crashed before it could
        // record `disposed` looks just like one renumbered, and claiming it would lose the newcomer.
        // A rare duplicate is acceptable; a loss never is.
        guard mayReconcile else { return .deliver }
        let prior = try await ledger.priorCopies(of: key, sha256: spooled.sha256, target: sink.identity).first { old in
            !claimed.contains(old.key) && old.key.uidValidity != uidValidity
        }
        if let prior {
            claimed.insert(prior.key)
            logger.notice("\(key): same content as \(prior.key), already delivered (\(prior.targetRef)); not delivered again")
            return .claim(prior: prior.key, targetRef: prior.targetRef)
        }
        return .deliver
    }
}

/// The batches a transfer has started fetching ahead, in order, so that the source, as one
/// batch's response ends, can ask for the next (`MailSource.fetch(_:mailbox:upcoming:makeSpool:)`).
/// Read from the source connection's event loop, hence the lock.
final class FetchPlan: @unchecked Sendable {
    private let lock = NSLock()
    private var batches: [(range: Range<Int>, messages: [ListedMessage])] = []

    func add(_ range: Range<Int>, _ messages: [ListedMessage]) {
        lock.withLock { batches.append((range, messages)) }
    }

    /// The batch started after `range`, if one is; the ones before `range` are done with.
    func after(_ range: Range<Int>) -> [ListedMessage]? {
        lock.withLock {
            guard let i = batches.firstIndex(where: { $0.range == range }) else { return nil }
            batches.removeFirst(i)
            return batches.count > 1 ? batches[1].messages : nil
        }
    }

    /// Forgets every batch (the runner dropped the ones fetched ahead).
    func clear() {
        lock.withLock { batches.removeAll() }
    }
}

/// A batch fetched ahead, with its intents committed while the batch before it was flushed.
struct EarlyBatch {
    var results: [FetchResult]
    var preparations: [TransferStateMachine.Preparation] = []
}

/// A transfer that stopped early because its sink or source failed; what was delivered is recorded.
public struct TransferStopped: Error, CustomStringConvertible {
    public var account: String
    public var target: String
    public var error: DeliveryError

    public var description: String { "\(account) → \(target): stopped: \(error.message)" }
}
