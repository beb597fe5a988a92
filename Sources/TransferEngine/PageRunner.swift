import Foundation
import FunnelModel
import Logging

/// Performs the actions of one page's `TransferStateMachine` and reports their results back to
/// it. It decides nothing of the protocol: what runs when, and what waits for what, is the
/// machine's. Sink steps (deliver, flush), disposals and the commits in a batch's turn run here,
/// one at a time; fetches, early intents and late outcome commits run in tasks of their own,
/// whose results come back through `PageEvents`. Every task is in before `run` returns or throws.
final class PageRunner {
    private let transfer: Transfer
    private let mailbox: String
    private let uidValidity: UInt32
    private var machine: TransferStateMachine
    private let prepareTarget: (_ folder: String?) async throws -> (mailbox: String, watermark: TargetWatermark)
    private let events = PageEvents()
    private let plan = FetchPlan()
    private let reconcile: Bool
    /// The page's batches as planned, for sources that can ask for several at once (keeping only).
    private let planned: [Range<Int>]
    private let spoolOptions: Spool.Options

    /// The target folders readied, set when the account's is (`.prepareTarget`).
    private var target: IntentTarget?
    /// Each batch's fetch while it runs (an early intent commit may wait for it); its results then
    /// move to `fetched`. Nothing else keeps a fetch's results: they hold the batch's spools.
    private var fetches: [Int: Task<Handoff<[FetchResult]>, Error>] = [:]
    /// Ends when the fetch started last has; the next one starts after it.
    private var lastFetch: Task<Void, Never>?
    private var fetched: [Int: [FetchResult]] = [:]
    /// The spools of messages whose decision is to deliver (or claim), until the sink is done with
    /// them, carrying the flags decided.
    private var spools: [Int: SpooledMessage] = [:]
    /// The folder decided for each message to deliver.
    private var folders: [Int: String] = [:]
    private var lastLate: Task<Void, Error>?
    /// The messages of each late outcome commit in flight, counted once it is in.
    private var lateIndices: [Int: [Int]] = [:]
    /// What the last flush left to do before its deliveries are durable (a Maildir's syncs and
    /// moves into place), done with that batch's outcomes.
    private var settlement: Settlement?
    private var errors: [TransferStateMachine.AbortCause: Error] = [:]
    private var pageWatermark: (uid: UInt32, pageSettled: Bool)?
    private var stopping = false
    /// The task was cancelled (a shutdown): the machine was told to wind down.
    private var windingDown = false

    private var source: MailSource { transfer.source }
    private var sink: MailSink { transfer.sink }
    private var ledger: any Ledger { transfer.ledger }
    private var options: TransferOptions { transfer.options }
    private var logger: Logger { transfer.logger }

    /// - Parameter prepareTarget: readies a target folder (nil: the account's) the first time it
    ///   is asked for; the account's is asked for while the first batches are fetched.
    init(transfer: Transfer, deliver: [ListedMessage], leftovers: [ListedMessage], mailbox: String, info: MailboxInfo,
         reconcile: Bool, prepareTarget: @escaping (_ folder: String?) async throws -> (mailbox: String, watermark: TargetWatermark)) {
        self.transfer = transfer
        self.mailbox = mailbox
        self.uidValidity = info.uidValidity
        self.prepareTarget = prepareTarget
        self.reconcile = reconcile
        var spool = transfer.options.spool
        spool.normalizeToCRLF = transfer.sink.requiresCRLF
        if spool.budget == nil { spool.budget = transfer.spoolBudget }
        spoolOptions = spool
        let options = transfer.options
        let pipeline = TransferStateMachine.Pipeline(
            prefetchDepth: options.prefetch ? options.prefetchDepth : 0, spoolMemory: options.spoolMemory,
            earlyIntents: options.prefetch && !reconcile && !transfer.decisions.choosesFolders,
            lateOutcomes: options.prefetch && options.disposal == .keep ? PageRunner.lateBatches : 0,
            releaseOnDelivery: !transfer.sink.readsMessagesAtFlush)
        machine = TransferStateMachine(deliver: deliver, leftovers: leftovers, disposal: options.disposal, limits: options.limits,
                                       pipeline: pipeline,
                                       memoryCost: deliver.map { Spool.memoryCost(expectedSize: $0.size ?? 0, options: spool) },
                                       disposeNewDeliveries: options.deleteAfter == nil)
        planned = options.disposal == .keep ? machine.plannedBatches : []
    }

    /// How many batches' outcome commits may be in flight behind the deliveries.
    static let lateBatches = 3

    private func key(_ i: Int) -> SourceKey {
        SourceKey(account: transfer.account, mailbox: mailbox, uidValidity: uidValidity, ident: machine.messages[i].ident)
    }

    /// Runs the page; returns where the high-water mark may move.
    func run() async throws -> (uid: UInt32, pageSettled: Bool)? {
        do {
            while true {
                while let event = events.poll() { try handle(event) }
                if !windingDown && Task.isCancelled {
                    // Finish the batch in hand rather than abandon it: what is delivered is then
                    // committed, and the source disposed of, before the process goes.
                    windingDown = true
                    machine.windDown()
                }
                switch machine.nextAction() {
                case .wait:
                    try handle(await events.next())
                case let .fetch(batch, range):
                    startFetch(batch, range)
                case .prepareTarget:
                    let (folder, watermark) = try await prepareTarget(nil)
                    target = IntentTarget(mailbox: folder, watermark: watermark, identity: sink.identity)
                    machine.targetPrepared()
                case let .commitIntents(batch, range, early):
                    if early { startEarlyIntents(batch, range) } else { try await commitIntents(batch, range) }
                case let .deliver(i, release):
                    try await deliver(i, releaseSpool: release)
                case let .flush(batch):
                    try await flush(batch)
                case let .commitOutcomes(batch, indices, late):
                    try await commitOutcomes(batch, indices, late: late)
                case let .dispose(indices):
                    try await dispose(indices)
                case let .commitDisposed(indices):
                    try await ledger.markDisposed(indices.map(key), how: options.disposal)
                    transfer.summary.disposed += indices.count
                    try transfer.afterEffect(.ledgerDisposed)
                    machine.disposedCommitted()
                case let .withdraw(indices):
                    try await withdraw(indices)
                case let .moveWatermark(uid, settled):
                    // Moved by the caller, after the page, and only while every earlier page is settled.
                    pageWatermark = (uid, settled)
                    machine.watermarkMoved()
                case .abort:
                    throw machine.abortCause.flatMap { errors[$0] } ?? CancellationError()
                case let .finished(error):
                    if let error {
                        throw TransferStopped(account: options.name ?? source.identity, target: sink.identity, error: error)
                    }
                    return pageWatermark
                }
            }
        } catch {
            await stop(error)
            throw error
        }
    }

    /// After a step threw: waits for everything in flight, then makes what was delivered but is
    /// not yet durable so, so that recovery finds it next time rather than delivering it again.
    private func stop(_ error: Error) async {
        stopping = true
        machine.stopped()
        while machine.nextAction() == .wait {
            try? handle(await events.next())
        }
        if let s = settlement { try? s.run() }
    }

    // MARK: results from the background

    private func handle(_ event: PageEvents.Event) throws {
        switch event {
        case let .fetched(batch, .success(results)):
            fetches[batch] = nil
            fetched[batch] = results.value
            machine.fetched(batch: batch)
        case let .fetched(batch, .failure(error)):
            fetches[batch] = nil
            errors[.fetch(batch: batch)] = error
            machine.fetchFailed(batch: batch)
        case let .intents(batch, .success(early)):
            machine.intentsCommitted(batch: batch, early.value.preparations)
            guard !stopping else { return }
            fetched[batch] = nil
            let start = machine.range(ofBatch: batch).lowerBound
            keep(early.value.results, early.value.preparations, from: start)
            try transfer.afterEffect(.ledgerIntents)
            count(early.value.preparations, from: start)
        case let .intents(batch, .failure(error)):
            errors[.intents(batch: batch)] = error
            machine.intentsFailed(batch: batch)
        case let .outcomes(batch, .success):
            machine.outcomesCommitted(batch: batch, late: true)
            countOutcomes(lateIndices.removeValue(forKey: batch) ?? [])
            if !stopping { try transfer.afterEffect(.ledgerOutcomes) }
        case let .outcomes(batch, .failure(error)):
            lateIndices[batch] = nil
            errors[.lateOutcomes] = errors[.lateOutcomes] ?? error
            machine.outcomesFailed(batch: batch)
        }
    }

    // MARK: steps

    /// Fetches run one after another on the source's one connection, each after the one before.
    private func startFetch(_ batch: Int, _ range: Range<Int>) {
        let source = Handoff(self.source)
        let messages = Array(machine.messages[range])
        let spoolOptions = self.spoolOptions
        let before = lastFetch
        let plan = self.plan, events = self.events, mailbox = self.mailbox
        plan.add(range, messages)
        let later = horizon(after: range)
        let task = Task {
            await before?.value
            do {
                let results = Handoff(try await source.value.fetch(messages, mailbox: mailbox, upcoming: { plan.after(range) },
                                                                   horizon: later) { Spool(options: spoolOptions) })
                events.post(.fetched(batch: batch, .success(results)))
                return results
            } catch {
                events.post(.fetched(batch: batch, .failure(error)))
                throw error
            }
        }
        lastFetch = Task { _ = await task.result }
        fetches[batch] = task
    }

    private func horizon(after range: Range<Int>) -> @Sendable () -> [[ListedMessage]] {
        guard let i = planned.firstIndex(of: range) else { return { [] } }
        let later = planned[(i + 1)...].map { Array(machine.messages[$0]) }
        return { later }
    }

    /// The batch's decisions and intents, in its turn.
    private func commitIntents(_ batch: Int, _ range: Range<Int>) async throws {
        guard let results = fetched.removeValue(forKey: batch) else {
            preconditionFailure("intents of batch \(batch) before its fetch")
        }
        let keys = range.map(key)
        let preparations = try await transfer.decisions.decide(results, keys: keys, uidValidity: uidValidity,
                                                                 sizeLimit: sink.maxMessageSize, reconcile: reconcile)
        guard var target else { preconditionFailure("intents of batch \(batch) before the target is prepared") }
        for folder in target.unready(preparations) {
            target.folders[folder] = try await prepareTarget(folder).watermark
        }
        self.target = target
        let (pending, claims, outcomes) = target.intents(results, preparations, keys: keys)
        try await ledger.commitIntents(pending: pending, claims: claims, outcomes: outcomes)
        machine.intentsCommitted(batch: batch, preparations)
        keep(results, preparations, from: range.lowerBound)
        try transfer.afterEffect(.ledgerIntents)
        count(preparations, from: range.lowerBound)
    }

    /// The next batch's decisions and intents while this one is flushed: pending before delivery is
    /// all the protocol asks, and the ledger's fsync then overlaps the server's work. If the run
    /// stops before the batch starts, its intents are withdrawn (or, after a crash, found absent).
    private func startEarlyIntents(_ batch: Int, _ range: Range<Int>) {
        let inHand = fetched[batch].map(Handoff.init), fetch = fetches[batch]
        precondition(inHand != nil || fetch != nil, "early intents of batch \(batch) before its fetch")
        let keys = range.map(key)
        let decisions = transfer.decisions, ledger = self.ledger, events = self.events
        let uidValidity = self.uidValidity, sizeLimit = sink.maxMessageSize
        guard let target else { preconditionFailure("early intents of batch \(batch) before the target is prepared") }
        Task {
            do {
                let results: [FetchResult]
                if let inHand { results = inHand.value } else { results = try await fetch!.value.value }
                let preparations = try await decisions.decide(results, keys: keys, uidValidity: uidValidity, sizeLimit: sizeLimit,
                                                                 reconcile: false)
                // Only the account's folder: early intents are off when a rule chooses folders.
                let (pending, _, outcomes) = target.intents(results, preparations, keys: keys)
                try await ledger.commitIntents(pending: pending, claims: [], outcomes: outcomes)
                events.post(.intents(batch: batch, .success(Handoff(EarlyIntents(results: results, preparations: preparations)))))
            } catch {
                events.post(.intents(batch: batch, .failure(error)))
            }
        }
    }

    /// Keeps the spools of what will be delivered (with the flags decided, and its folder) or
    /// claimed; the rest are done with.
    private func keep(_ results: [FetchResult], _ preparations: [TransferStateMachine.Preparation], from start: Int) {
        for (j, (result, preparation)) in zip(results, preparations).enumerated() {
            guard case var .spooled(_, s) = result else { continue }
            switch preparation {
            case let .deliver(d):
                if let flags = d.flags { s.flags = flags }
                spools[start + j] = s
                if let folder = d.mailbox { folders[start + j] = folder }
            case .claim: spools[start + j] = s
            default: break
            }
        }
    }

    private func count(_ preparations: [TransferStateMachine.Preparation], from start: Int) {
        for (j, p) in preparations.enumerated() {
            switch p {
            case .claim:
                transfer.claimsInMailbox += 1
                transfer.onEvent(.alreadyDone(messages: 1, bytes: machine.messages[start + j].size ?? 0))
            case .skip: transfer.summary.skipped += 1; transfer.onEvent(.skipped)
            case .fetchFailed: transfer.summary.failed += 1; transfer.onEvent(.failed)
            case .deliver: break
            }
        }
    }

    private func deliver(_ i: Int, releaseSpool: Bool) async throws {
        guard let spooled = spools[i] else { preconditionFailure("delivery of \(i) without its spool") }
        // Unless the sink reads it again at flush, the spool is done with once delivered (or
        // refused), and its memory goes to the batches fetched ahead.
        if releaseSpool { spools[i] = nil }
        do {
            let receipt = try await sink.deliver(spooled, key: key(i), mailbox: folders.removeValue(forKey: i) ?? target!.mailbox)
            try transfer.afterEffect(.sinkDeliver)
            switch receipt {
            case let .delivered(ref): machine.delivered(i, ref: ref)
            case .staged: machine.staged(i)
            }
        } catch let error as DeliveryError {
            logRefusal(i, error)
            machine.deliveryFailed(i, error)
        }
    }

    private func logRefusal(_ i: Int, _ error: DeliveryError) {
        if error.errorClass == .overLimit {
            logger.warning("\(mailbox) \(machine.messages[i].ident): \(sink.identity) refuses it (\(error.message)); skipped")
        } else {
            logger.error("\(mailbox) \(machine.messages[i].ident): delivery to \(sink.identity) failed: \(error.message)")
        }
    }

    private func flush(_ batch: Int) async throws {
        let range = machine.range(ofBatch: batch)
        do {
            let (outcomes, settle) = try await sink.flushLeavingSettlement()
            settlement = settle
            try transfer.afterEffect(.sinkFlush)
            for i in range {
                switch outcomes[key(i)] {
                case let .delivered(ref)?: machine.resolved(i, .delivered(ref))
                case let .failed(error)?:
                    logRefusal(i, error)
                    machine.resolved(i, .failed(error))
                case nil: break
                }
            }
            for i in range { spools[i] = nil }
            machine.flushed()
        } catch let error as DeliveryError {
            logger.error("\(sink.identity): could not make deliveries durable: \(error.message)")
            for i in range { spools[i] = nil }
            machine.flushFailed(error)
        }
    }

    private func commitOutcomes(_ batch: Int, _ indices: [Int], late: Bool) async throws {
        var outcomes: [DeliveryOutcome] = []
        for i in indices {
            switch machine.outcome(i) {
            case let .delivered(ref)?: outcomes.append(.delivered(key(i), targetRef: ref))
            case let .failed(error)? where error.errorClass == .overLimit:
                // Refused for good: skipped, so no later run sends it again.
                outcomes.append(.skipped(key(i), reason: error.message, sha256: nil, size: machine.messages[i].size))
            case let .failed(error)?: outcomes.append(.failed(key(i), error))
            case nil: break
            }
        }
        let settle = settlement
        settlement = nil
        let account = options.name ?? source.identity, target = sink.identity
        if late {
            lateIndices[batch] = indices
            // Settled at once, beside other batches' settlements (they share their syncs); recorded
            // in order, after the batch before, with whatever else the ledger has queued.
            let previous = lastLate, ledger = self.ledger, events = self.events
            lastLate = Task {
                do {
                    if let settle { try await settled(account: account, target: target) { try await settle.runQueued() } }
                    try await previous?.value
                    try await ledger.record(outcomes)
                    events.post(.outcomes(batch: batch, .success(())))
                } catch {
                    events.post(.outcomes(batch: batch, .failure(error)))
                    throw error
                }
            }
        } else {
            if let settle { try await settled(account: account, target: target) { try settle.run() } }
            try await ledger.record(outcomes)
            countOutcomes(indices)
            try transfer.afterEffect(.ledgerOutcomes)
            machine.outcomesCommitted(batch: batch, late: false)
        }
    }

    /// Counts outcomes once they are committed: the summary of a run that stops says what the
    /// ledger holds.
    private func countOutcomes(_ indices: [Int]) {
        for i in indices {
            switch machine.outcome(i) {
            case .delivered?:
                transfer.summary.delivered += 1
                transfer.summary.bytes += machine.messages[i].size ?? 0
                transfer.onEvent(.delivered(bytes: machine.messages[i].size ?? 0))
            case let .failed(error)? where error.errorClass == .overLimit:
                transfer.summary.skipped += 1
                transfer.onEvent(.skipped)
            case let .failed(error)?:
                transfer.summary.failed += 1
                if error.errorClass != .permanent { transfer.summary.deferred += 1 }
                transfer.onEvent(.failed)
            case nil: break
            }
        }
    }

    private func dispose(_ indices: [Int]) async throws {
        let wanted = indices.map { machine.messages[$0] }
        do {
            let done = Set(try await source.dispose(wanted, mailbox: mailbox, how: options.disposal))
            try transfer.afterEffect(.sourceDispose)
            machine.disposed(indices.filter { done.contains(machine.messages[$0].ident) })
        } catch let error as DeliveryError {
            logger.error("\(mailbox): could not \(options.disposal.rawValue) delivered messages at the source: \(error.message)")
            machine.disposeFailed(error)
        }
    }

    /// Intents committed for a batch the run stopped before: temporary failures, retried next run
    /// without recovery, as the rest of a failed batch is.
    private func withdraw(_ indices: [Int]) async throws {
        let why = "not attempted: \(machine.stoppedBy?.message ?? "delivery stopped")"
        try await ledger.record(indices.map { .failed(key($0), DeliveryError(.temporary, why)) })
        for i in indices { spools[i] = nil; folders[i] = nil }
        transfer.summary.failed += indices.count
        transfer.summary.deferred += indices.count
        machine.withdrawn()
    }
}
