import FunnelModel
import FunnelTestSupport
import Testing
@testable import TransferEngine

struct TransferStateMachineTests {
    typealias M = TransferStateMachine

    static func listed(_ n: Int, size: Int = 100, uids: Bool = false) -> [ListedMessage] {
        (0..<n).map { ListedMessage(ident: "m\($0)", size: size, locator: uids ? .uid(UInt32(10 + $0)) : .number($0)) }
    }

    static let prefetching = M.Pipeline(prefetchDepth: 3, spoolMemory: 1 << 20, earlyIntents: true, lateOutcomes: 3,
                                        releaseOnDelivery: true)

    @Test func runsEachBatchInProtocolOrder() {
        var m = M(deliver: Self.listed(3), leftovers: [], disposal: .delete, limits: .init(maxMessages: 2))
        #expect(m.nextAction() == .prepareTarget)
        m.targetPrepared()
        #expect(m.nextAction() == .fetch(batch: 0, 0..<2))
        #expect(m.nextAction() == .wait)
        m.fetched(batch: 0)
        #expect(m.nextAction() == .commitIntents(batch: 0, 0..<2, early: false))
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged)])
        #expect(m.nextAction() == .deliver(0, releaseSpool: false))
        m.delivered(0, ref: "r0")
        #expect(m.nextAction() == .deliver(1, releaseSpool: false))
        m.delivered(1, ref: "r1")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0, 1], late: false))
        #expect(m.outcome(0) == .delivered("r0"))
        m.outcomesCommitted(batch: 0, late: false)
        #expect(m.nextAction() == .dispose([0, 1]))
        m.disposed([0, 1])
        #expect(m.nextAction() == .commitDisposed([0, 1]))
        m.disposedCommitted()
        #expect(m.nextAction() == .fetch(batch: 1, 2..<3))
        m.fetched(batch: 1)
        #expect(m.nextAction() == .commitIntents(batch: 1, 2..<3, early: false))
        m.intentsCommitted(batch: 1, [.deliver(.unchanged)])
        #expect(m.nextAction() == .deliver(2, releaseSpool: false))
        m.delivered(2, ref: "r2")
        #expect(m.nextAction() == .flush(batch: 1))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 1, [2], late: false))
        m.outcomesCommitted(batch: 1, late: false)
        #expect(m.nextAction() == .dispose([2]))
        m.disposed([2])
        #expect(m.nextAction() == .commitDisposed([2]))
        m.disposedCommitted()
        #expect(m.nextAction() == .finished(nil))
    }

    /// A shutdown asked for while batch 0 is delivered: batch 0 is finished and disposed of,
    /// nothing after it is delivered or fetched, and the next batch's early intents are withdrawn.
    @Test func windingDownFinishesTheBatchInHandAndBeginsNoOther() {
        var m = M(deliver: Self.listed(6), leftovers: [], disposal: .delete, limits: .init(maxMessages: 2), pipeline: Self.prefetching)
        var actions: [M.Action] = []
        var fetching: [Int] = [], earlyInFlight: [(Int, Range<Int>)] = []
        var wound = false
        loop: for _ in 0..<200 {
            let a = m.nextAction()
            actions.append(a)
            switch a {
            case .prepareTarget: m.targetPrepared()
            case let .fetch(b, _): fetching.append(b)
            case .wait:
                if !fetching.isEmpty { m.fetched(batch: fetching.removeFirst()) }
                else if !earlyInFlight.isEmpty {
                    let (b, r) = earlyInFlight.removeFirst()
                    m.intentsCommitted(batch: b, r.map { _ in .deliver(.unchanged) })
                } else { Issue.record("waits with nothing in flight"); break loop }
            case let .commitIntents(b, r, early):
                if early { earlyInFlight.append((b, r)) } else { m.intentsCommitted(batch: b, r.map { _ in .deliver(.unchanged) }) }
            case let .deliver(i, _):
                m.delivered(i, ref: "r\(i)")
                if !wound { m.windDown(); wound = true }
            case .flush:
                // The next batch's intents go early while this one flushes, before the wind-down is seen.
                m.flushed()
            case let .commitOutcomes(b, _, late): m.outcomesCommitted(batch: b, late: late)
            case let .dispose(idx): m.disposed(idx)
            case .commitDisposed: m.disposedCommitted()
            case .withdraw: m.withdrawn()
            case .moveWatermark: m.watermarkMoved()
            case .abort: Issue.record("aborted"); break loop
            case .finished: break loop
            }
        }
        #expect(actions.last == .finished(nil))
        let delivered = actions.compactMap { if case let .deliver(i, _) = $0 { return i } else { return nil } }
        #expect(delivered == [0, 1])
        #expect(actions.contains(.dispose([0, 1])))
        let fetchedAfter = actions.drop { if case .deliver = $0 { return false } else { return true } }
            .contains { if case .fetch = $0 { return true } else { return false } }
        #expect(!fetchedAfter, "fetched after the wind-down: \(actions)")
        #expect(!actions.contains { if case .commitIntents(_, _, true) = $0 { return true } else { return false } })
    }

    @Test func keepingNeverDisposes() {
        var m = M(deliver: Self.listed(2), leftovers: [], disposal: .keep)
        #expect(m.nextAction() == .prepareTarget)
        m.targetPrepared()
        #expect(m.nextAction() == .fetch(batch: 0, 0..<2))
        m.fetched(batch: 0)
        #expect(m.nextAction() == .commitIntents(batch: 0, 0..<2, early: false))
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .skip(reason: "too large")])
        #expect(m.nextAction() == .deliver(0, releaseSpool: false))
        m.delivered(0, ref: "r")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0], late: false))
        m.outcomesCommitted(batch: 0, late: false)
        #expect(m.nextAction() == .finished(nil))
    }

    @Test func disposesOfLeftoversFirst() {
        var m = M(deliver: Self.listed(1), leftovers: [ListedMessage(ident: "old", size: 1, locator: .number(9))], disposal: .delete)
        #expect(m.nextAction() == .prepareTarget)
        m.targetPrepared()
        #expect(m.nextAction() == .dispose([1]))
        m.disposed([1])
        #expect(m.nextAction() == .commitDisposed([1]))
        m.disposedCommitted()
        #expect(m.nextAction() == .fetch(batch: 0, 0..<1))
    }

    /// Fetching ahead waits for the leftovers' disposal: the source does one thing at a time.
    @Test func fetchesNothingAheadWhileLeftoversAreDisposedOf() {
        var m = M(deliver: Self.listed(4), leftovers: [ListedMessage(ident: "old", size: 1, locator: .number(9))], disposal: .delete,
                  limits: .init(maxMessages: 1), pipeline: Self.prefetching)
        #expect(m.nextAction() == .prepareTarget)
        m.targetPrepared()
        #expect(m.nextAction() == .dispose([4]))
        m.disposed([4])
        #expect(m.nextAction() == .commitDisposed([4]))
        m.disposedCommitted()
        #expect(m.nextAction() == .fetch(batch: 0, 0..<1))
    }

    @Test func aBadMessageDoesNotStopTheBatch() {
        var m = M(deliver: Self.listed(3), leftovers: [], disposal: .delete)
        _ = m.nextAction(); m.targetPrepared(); _ = m.nextAction(); m.fetched(batch: 0); _ = m.nextAction()
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged), .fetchFailed(DeliveryError(.temporary, "gone"))])
        #expect(m.nextAction() == .deliver(0, releaseSpool: false))
        m.deliveryFailed(0, DeliveryError(.permanent, "554 rejected"))
        #expect(m.nextAction() == .deliver(1, releaseSpool: false))
        m.delivered(1, ref: "r1")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0, 1], late: false))
        #expect(m.outcome(0) == .failed(DeliveryError(.permanent, "554 rejected")))
        m.outcomesCommitted(batch: 0, late: false)
        // Only the delivered one is disposed of; the rejected one stays at the source.
        #expect(m.nextAction() == .dispose([1]))
    }

    @Test func aFailedSinkLeavesTheUnknownOnePendingAndStops() {
        var m = M(deliver: Self.listed(4), leftovers: [], disposal: .delete, limits: .init(maxMessages: 3))
        _ = m.nextAction(); m.targetPrepared(); _ = m.nextAction(); m.fetched(batch: 0); _ = m.nextAction()
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged), .deliver(.unchanged)])
        #expect(m.nextAction() == .deliver(0, releaseSpool: false))
        m.delivered(0, ref: "r0")
        #expect(m.nextAction() == .deliver(1, releaseSpool: false))
        m.deliveryFailed(1, DeliveryError(.sinkFailed, "connection lost"))
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        // 1 is unknown (stays pending for recovery); 2 was never tried (a temporary failure).
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0, 2], late: false))
        #expect(m.outcome(1) == nil)
        if case .failed(let e)? = m.outcome(2) { #expect(e.errorClass == .temporary) } else { Issue.record("2 should fail") }
        m.outcomesCommitted(batch: 0, late: false)
        #expect(m.nextAction() == .dispose([0]))
        m.disposed([0])
        #expect(m.nextAction() == .commitDisposed([0]))
        m.disposedCommitted()
        #expect(m.nextAction() == .finished(DeliveryError(.sinkFailed, "connection lost")))
    }

    @Test func aFailedFlushCommitsNothing() {
        var m = M(deliver: Self.listed(2), leftovers: [], disposal: .delete)
        _ = m.nextAction(); m.targetPrepared(); _ = m.nextAction(); m.fetched(batch: 0); _ = m.nextAction()
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged)])
        _ = m.nextAction(); m.delivered(0, ref: "a")
        _ = m.nextAction(); m.delivered(1, ref: "b")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushFailed(DeliveryError(.sinkFailed, "disk full"))
        #expect(m.nextAction() == .finished(DeliveryError(.sinkFailed, "disk full")))
    }

    @Test func batchesByBytesAsWellAsCount() {
        let sizes = [5 << 20, 5 << 20, 1024, 1024]
        let messages = sizes.enumerated().map { ListedMessage(ident: "\($0.offset)", size: $0.element, locator: .number($0.offset)) }
        let m = M(deliver: messages, leftovers: [], disposal: .keep, limits: .init(maxMessages: 10, maxBytes: 8 << 20))
        #expect(m.plannedBatches == [0..<1, 1..<4])
    }

    /// With the default limits, the batch being delivered and the one fetched behind it fit in
    /// the default spool budget as NIO allocates them, even for sizes just over a power of two
    /// (which it nearly doubles), so prefetching sends no small message to a temporary file.
    @Test(arguments: [false, true])
    func twoDefaultBatchesFitTheDefaultSpoolBudget(normalizing: Bool) {
        let options = TransferOptions()
        var spool = options.spool
        spool.normalizeToCRLF = normalizing
        for k in 10...19 {
            let messages = (0..<600).map { ListedMessage(ident: "\($0)", size: (1 << k) + 1, locator: .number($0)) }
            let m = M(deliver: messages, leftovers: [], disposal: .keep)
            var previous = 0
            for r in m.plannedBatches {
                let cost = messages[r].reduce(0) { $0 + Spool.memoryCost(expectedSize: $1.size!, options: spool) }
                #expect(previous + cost <= options.spoolBudgetLimit, "messages of \((1 << k) + 1) bytes: \(previous) + \(cost)")
                previous = cost
            }
        }
    }

    @Test func watermarkStopsBelowTheFirstUnsettledUID() {
        var m = M(deliver: Self.listed(3, uids: true), leftovers: [], disposal: .keep)
        _ = m.nextAction(); m.targetPrepared(); _ = m.nextAction(); m.fetched(batch: 0); _ = m.nextAction()
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged), .deliver(.unchanged)])
        _ = m.nextAction(); m.delivered(0, ref: "a")
        _ = m.nextAction(); m.deliveryFailed(1, DeliveryError(.temporary, "later"))
        _ = m.nextAction(); m.delivered(2, ref: "c")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        _ = m.nextAction(); m.outcomesCommitted(batch: 0, late: false)
        #expect(m.nextAction() == .moveWatermark(10, pageSettled: false))
        m.watermarkMoved()
        #expect(m.nextAction() == .finished(nil))

        var all = M(deliver: Self.listed(3, uids: true), leftovers: [], disposal: .keep)
        _ = all.nextAction(); all.targetPrepared(); _ = all.nextAction(); all.fetched(batch: 0); _ = all.nextAction()
        all.intentsCommitted(batch: 0, [.deliver(.unchanged), .claim(prior: SourceKey(account: "a", mailbox: "b", ident: "c"), targetRef: "r"),
                                        .skip(reason: "big")])
        _ = all.nextAction(); all.delivered(0, ref: "a")
        _ = all.nextAction(); all.flushed()
        _ = all.nextAction(); all.outcomesCommitted(batch: 0, late: false)
        #expect(all.nextAction() == .moveWatermark(12, pageSettled: true))
    }

    /// The next batch's intents go out while this batch flushes; its outcomes are committed late,
    /// and the high-water mark waits for them.
    @Test func overlapsTheNextBatchWithThisOnesFlushAndCommit() {
        var m = M(deliver: Self.listed(4, uids: true), leftovers: [], disposal: .keep, limits: .init(maxMessages: 2),
                  pipeline: Self.prefetching)
        #expect(m.nextAction() == .fetch(batch: 0, 0..<2))
        #expect(m.nextAction() == .fetch(batch: 1, 2..<4))
        #expect(m.nextAction() == .prepareTarget)
        m.targetPrepared()
        #expect(m.nextAction() == .wait)
        m.fetched(batch: 0)
        #expect(m.nextAction() == .commitIntents(batch: 0, 0..<2, early: false))
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged)])
        #expect(m.nextAction() == .deliver(0, releaseSpool: true))
        m.delivered(0, ref: "a")
        #expect(m.nextAction() == .deliver(1, releaseSpool: true))
        m.delivered(1, ref: "b")
        // Batch 1 is still being fetched: its intents are committed as soon as it is in.
        #expect(m.nextAction() == .commitIntents(batch: 1, 2..<4, early: true))
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0, 1], late: true))
        #expect(m.nextAction() == .wait)
        m.fetched(batch: 1)
        #expect(m.nextAction() == .wait)
        m.intentsCommitted(batch: 1, [.deliver(.unchanged), .deliver(.unchanged)])
        #expect(m.nextAction() == .deliver(2, releaseSpool: true))
        m.delivered(2, ref: "c")
        #expect(m.nextAction() == .deliver(3, releaseSpool: true))
        m.delivered(3, ref: "d")
        #expect(m.nextAction() == .flush(batch: 1))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 1, [2, 3], late: true))
        #expect(m.nextAction() == .wait)
        m.outcomesCommitted(batch: 1, late: true)
        #expect(m.nextAction() == .wait)
        m.outcomesCommitted(batch: 0, late: true)
        #expect(m.nextAction() == .moveWatermark(13, pageSettled: true))
    }

    /// Intents committed early for a batch the run never started are withdrawn.
    @Test func withdrawsTheIntentsOfABatchThatNeverStarted() {
        var m = M(deliver: Self.listed(4), leftovers: [], disposal: .keep, limits: .init(maxMessages: 2), pipeline: Self.prefetching)
        _ = m.nextAction(); _ = m.nextAction(); _ = m.nextAction(); m.targetPrepared()
        m.fetched(batch: 0)
        m.fetched(batch: 1)
        #expect(m.nextAction() == .commitIntents(batch: 0, 0..<2, early: false))
        m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged)])
        _ = m.nextAction(); m.delivered(0, ref: "a")
        _ = m.nextAction(); m.delivered(1, ref: "b")
        #expect(m.nextAction() == .commitIntents(batch: 1, 2..<4, early: true))
        #expect(m.nextAction() == .flush(batch: 0))
        m.intentsCommitted(batch: 1, [.deliver(.unchanged), .skip(reason: "big")])
        m.flushFailed(DeliveryError(.sinkFailed, "gone"))
        #expect(m.nextAction() == .withdraw([2]))
        m.withdrawn()
        #expect(m.nextAction() == .finished(DeliveryError(.sinkFailed, "gone")))
    }

    /// A batch whose fetch failed stops the run when its turn comes, once nothing is in flight.
    @Test func aFailedFetchAbortsAtItsTurn() {
        var m = M(deliver: Self.listed(4), leftovers: [], disposal: .keep, limits: .init(maxMessages: 2), pipeline: Self.prefetching)
        _ = m.nextAction(); _ = m.nextAction(); _ = m.nextAction(); m.targetPrepared()
        m.fetched(batch: 0)
        m.fetchFailed(batch: 1)
        _ = m.nextAction(); m.intentsCommitted(batch: 0, [.deliver(.unchanged), .deliver(.unchanged)])
        _ = m.nextAction(); m.delivered(0, ref: "a")
        _ = m.nextAction(); m.delivered(1, ref: "b")
        #expect(m.nextAction() == .flush(batch: 0))
        m.flushed()
        #expect(m.nextAction() == .commitOutcomes(batch: 0, [0, 1], late: true))
        #expect(m.nextAction() == .wait)
        m.outcomesCommitted(batch: 0, late: true)
        #expect(m.nextAction() == .abort)
        #expect(m.abortCause == .fetch(batch: 1))
    }

    /// Drives the machine with random pipelines, random outcomes and background results arriving
    /// at random moments, and checks the protocol's invariants on every step: nothing is delivered
    /// before its intent is committed, nothing is disposed of before its delivery is committed,
    /// nothing is disposed of while the source fetches, the mark moves only once every outcome is
    /// in, and every message ends settled, pending, or withdrawn (never silently dropped).
    @Test(arguments: 0..<400)
    func randomRunsKeepTheInvariants(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        func chance(_ n: UInt64) -> Bool { rng.next() % n == 0 }
        let n = Int(rng.next() % 14)
        let disposal: Disposal = [.keep, .delete, .markSeen][Int(rng.next() % 3)]
        let pipeline = rng.next() % 3 == 0 ? M.Pipeline.sequential
            : M.Pipeline(prefetchDepth: Int(rng.next() % 4), spoolMemory: Int(rng.next() % 8000), earlyIntents: rng.next() % 2 == 0,
                         lateOutcomes: Int(rng.next() % 4), releaseOnDelivery: rng.next() % 2 == 0)
        let listed = Self.listed(n, size: Int(rng.next() % 3000), uids: rng.next() % 2 == 0)
        var m = M(deliver: listed, leftovers: [], disposal: disposal,
                  limits: .init(maxMessages: Int(rng.next() % 4) + 1, maxBytes: 6000), pipeline: pipeline)

        enum Background { case fetch(Int), intents(Int, Range<Int>), outcomes(Int, [Int]) }
        var inFlight: [Background] = []
        var fetchedBatches: Set<Int> = [], failedFetches: Set<Int> = [], fetchStarted: [Int] = []
        var intentCommitted: Set<Int> = [], outcomeCommitted: [Int: M.Outcome] = [:]
        var delivered: Set<Int> = [], disposed: Set<Int> = [], withdrawn: Set<Int> = [], decided: [Int: M.Preparation] = [:]
        var unknown: Set<Int> = []
        var ranges: [Int: Range<Int>] = [:]
        var fatal = false, finished = false, aborted = false
        var nextExpected = 0

        func decide(_ range: Range<Int>) -> [M.Preparation] {
            range.map { i in
                let p: M.Preparation = chance(8) ? .skip(reason: "s") : chance(12) ? .fetchFailed(DeliveryError(.temporary, "f")) : .deliver(.unchanged)
                decided[i] = p
                return p
            }
        }
        /// Finishes one thing in flight; an early intent commit only once its fetch is in (and it
        /// fails when the fetch did, as the runner's task does).
        func completeOne() -> Bool {
            let ready = inFlight.indices.filter { j in
                if case let .intents(b, _) = inFlight[j] { return fetchedBatches.contains(b) || failedFetches.contains(b) }
                return true
            }
            guard !ready.isEmpty else { return false }
            let j = ready[Int(rng.next() % UInt64(ready.count))]
            switch inFlight.remove(at: j) {
            case let .fetch(b):
                if chance(25) { failedFetches.insert(b); m.fetchFailed(batch: b) } else { fetchedBatches.insert(b); m.fetched(batch: b) }
            case let .intents(b, range):
                if chance(30) || failedFetches.contains(b) { m.intentsFailed(batch: b) } else { intentCommitted.formUnion(range); m.intentsCommitted(batch: b, decide(range)) }
            case let .outcomes(b, idx):
                if chance(30) { m.outcomesFailed(batch: b) } else {
                    for i in idx { outcomeCommitted[i] = m.outcome(i) }
                    m.outcomesCommitted(batch: b, late: true)
                }
            }
            return true
        }

        var steps = 0
        // A shutdown at a random moment: no batch begun after it is delivered.
        var windLimit: Int?
        loop: while steps < 4000 {
            steps += 1
            if windLimit == nil && chance(60) {
                m.windDown()
                windLimit = m.batches.filter(\.started).map(\.range.upperBound).max() ?? 0
            }
            if !inFlight.isEmpty && chance(3) { _ = completeOne(); continue }
            let a = m.nextAction()
            switch a {
            case .wait:
                guard completeOne() else { Issue.record("the machine waits with nothing in flight"); break loop }
            case .prepareTarget:
                m.targetPrepared()
            case let .fetch(b, range):
                #expect(range.lowerBound == nextExpected, "batches are fetched in order")
                nextExpected = range.upperBound
                ranges[b] = range
                fetchStarted.append(b)
                inFlight.append(.fetch(b))
            case let .commitIntents(b, range, early):
                #expect(fetchStarted.contains(b), "intents of batch \(b) before its fetch started")
                if early {
                    inFlight.append(.intents(b, range))
                } else {
                    #expect(fetchedBatches.contains(b), "intents of batch \(b) in its turn before its fetch")
                    intentCommitted.formUnion(range)
                    m.intentsCommitted(batch: b, decide(range))
                }
            case let .deliver(i, _):
                #expect(intentCommitted.contains(i), "delivered \(i) before its intent was committed")
                #expect(decided[i] == .deliver(.unchanged), "delivered \(i), decided \(String(describing: decided[i]))")
                #expect(!delivered.contains(i), "delivered \(i) twice")
                #expect(i < (windLimit ?? .max), "delivered \(i), in a batch begun after the wind-down")
                delivered.insert(i)
                switch rng.next() % 10 {
                case 0: m.deliveryFailed(i, DeliveryError(.permanent, "p"))
                case 1: m.deliveryFailed(i, DeliveryError(.temporary, "t"))
                case 2: m.deliveryFailed(i, DeliveryError(.sinkFailed, "s")); fatal = true
                case 3: m.staged(i)
                default: m.delivered(i, ref: "r\(i)")
                }
            case let .flush(b):
                if chance(20) {
                    for i in ranges[b]! where delivered.contains(i) { unknown.insert(i) }
                    m.flushFailed(DeliveryError(.sinkFailed, "f")); fatal = true
                } else {
                    for i in ranges[b]! where delivered.contains(i) && m.outcome(i) == nil {
                        m.resolved(i, chance(2) ? .delivered("s\(i)") : .failed(DeliveryError(.permanent, "late 5xx")))
                    }
                    m.flushed()
                }
            case let .commitOutcomes(b, idx, late):
                if late {
                    #expect(disposal == .keep, "late outcome commits only when keeping")
                    inFlight.append(.outcomes(b, idx))
                } else {
                    for i in idx { outcomeCommitted[i] = m.outcome(i) }
                    m.outcomesCommitted(batch: b, late: false)
                }
            case let .dispose(idx):
                #expect(!inFlight.contains { if case .fetch = $0 { return true } else { return false } },
                        "disposed of messages while the source was fetching")
                for i in idx {
                    #expect(disposal != .keep)
                    switch (outcomeCommitted[i], decided[i]) {
                    case (.delivered?, _), (_, .claim?): break
                    default: Issue.record("disposed of \(i) before its delivery was committed"); break loop
                    }
                    disposed.insert(i)
                }
                if chance(15) { m.disposeFailed(DeliveryError(.temporary, "d")); fatal = true } else { m.disposed(idx) }
            case .commitDisposed:
                m.disposedCommitted()
            case let .withdraw(idx):
                for i in idx {
                    #expect(intentCommitted.contains(i) && !delivered.contains(i), "withdrew \(i), which was not an unused intent")
                    withdrawn.insert(i)
                }
                m.withdrawn()
            case .moveWatermark:
                #expect(inFlight.isEmpty, "the mark moved with work in flight")
                m.watermarkMoved()
            case .abort:
                #expect(inFlight.isEmpty, "aborted with work in flight")
                aborted = true
                break loop
            case .finished:
                #expect(inFlight.isEmpty, "finished with work in flight")
                finished = true
                break loop
            }
        }
        #expect(finished || aborted, "the machine did not finish")
        guard finished, !fatal else { return }
        // A whole run: every message ended somewhere a later run can see.
        for i in 0..<n {
            // After a wind-down, a message never begun is just not done: it is listed again next run.
            let notBegun = windLimit != nil && !intentCommitted.contains(i)
            let ended = notBegun || outcomeCommitted[i] != nil || withdrawn.contains(i) || unknown.contains(i)
                || [M.Preparation.skip(reason: "s"), .fetchFailed(DeliveryError(.temporary, "f"))].contains(decided[i] ?? .deliver(.unchanged))
                || { if case .claim? = decided[i] { return true } else { return false } }()
            #expect(ended || (m.outcome(i) == nil && delivered.contains(i)), "message \(i) was dropped")
        }
    }
}
