import FunnelModel
import FunnelTestSupport
@testable import TransferEngine
import Testing

struct TransferStateMachineTests {
    typealias M = TransferStateMachine

    static func listed(_ n: Int, size: Int = 100, uids: Bool = false) -> [ListedMessage] {
        (0..<n).map { ListedMessage(ident: "m\($0)", size: size, locator: uids ? .uid(UInt32(10 + $0)) : .number($0)) }
    }

    @Test func runsEachBatchInProtocolOrder() {
        var m = M(deliver: Self.listed(3), leftovers: [], disposal: .delete, limits: .init(maxMessages: 2))
        var trace: [M.Action] = []
        var a = m.start()
        trace.append(a)
        #expect(a == .fetch(0..<2))
        a = m.fetched([.deliver, .deliver]); trace.append(a)
        #expect(a == .commitIntents([0, 1]))
        a = m.intentsCommitted(); #expect(a == .deliver(0))
        a = m.delivered(0, ref: "r0"); #expect(a == .deliver(1))
        a = m.delivered(1, ref: "r1"); #expect(a == .flush)
        a = m.flushed(); #expect(a == .commitOutcomes([0, 1]))
        #expect(m.outcome(0) == .delivered("r0"))
        a = m.outcomesCommitted(); #expect(a == .dispose([0, 1]))
        a = m.disposed([0, 1]); #expect(a == .commitDisposed([0, 1]))
        a = m.disposedCommitted(); #expect(a == .fetch(2..<3))
        a = m.fetched([.deliver]); #expect(a == .commitIntents([2]))
        a = m.intentsCommitted(); #expect(a == .deliver(2))
        a = m.delivered(2, ref: "r2"); #expect(a == .flush)
        a = m.flushed(); #expect(a == .commitOutcomes([2]))
        a = m.outcomesCommitted(); #expect(a == .dispose([2]))
        a = m.disposed([2]); a = m.disposedCommitted()
        #expect(a == .finished(nil))
    }

    @Test func keepingNeverDisposes() {
        var m = M(deliver: Self.listed(2), leftovers: [], disposal: .keep)
        var a = m.start()
        #expect(a == .fetch(0..<2))
        a = m.fetched([.deliver, .skip(reason: "too large")])
        #expect(a == .commitIntents([0, 1]))
        a = m.intentsCommitted(); #expect(a == .deliver(0))
        a = m.delivered(0, ref: "r"); #expect(a == .flush)
        a = m.flushed(); #expect(a == .commitOutcomes([0]))
        a = m.outcomesCommitted(); #expect(a == .finished(nil))
    }

    @Test func disposesOfLeftoversFirst() {
        var m = M(deliver: Self.listed(1), leftovers: [ListedMessage(ident: "old", size: 1, locator: .number(9))], disposal: .delete)
        var a = m.start()
        #expect(a == .dispose([1]))
        a = m.disposed([1]); #expect(a == .commitDisposed([1]))
        a = m.disposedCommitted(); #expect(a == .fetch(0..<1))
    }

    @Test func aBadMessageDoesNotStopTheBatch() {
        var m = M(deliver: Self.listed(3), leftovers: [], disposal: .delete)
        var a = m.start()
        a = m.fetched([.deliver, .deliver, .fetchFailed(DeliveryError(.temporary, "gone"))])
        a = m.intentsCommitted(); #expect(a == .deliver(0))
        a = m.deliveryFailed(0, DeliveryError(.permanent, "554 rejected")); #expect(a == .deliver(1))
        a = m.delivered(1, ref: "r1"); #expect(a == .flush)
        a = m.flushed(); #expect(a == .commitOutcomes([0, 1]))
        #expect(m.outcome(0) == .failed(DeliveryError(.permanent, "554 rejected")))
        // Only the delivered one is disposed of; the rejected one stays at the source.
        a = m.outcomesCommitted(); #expect(a == .dispose([1]))
    }

    @Test func aFailedSinkLeavesTheUnknownOnePendingAndStops() {
        var m = M(deliver: Self.listed(4), leftovers: [], disposal: .delete, limits: .init(maxMessages: 3))
        var a = m.start()
        a = m.fetched([.deliver, .deliver, .deliver])
        a = m.intentsCommitted()
        a = m.delivered(0, ref: "r0")
        a = m.deliveryFailed(1, DeliveryError(.sinkFailed, "connection lost"))
        #expect(a == .flush)
        a = m.flushed()
        // 1 is unknown (stays pending for recovery); 2 was never tried (a temporary failure).
        #expect(a == .commitOutcomes([0, 2]))
        #expect(m.outcome(1) == nil)
        if case .failed(let e)? = m.outcome(2) { #expect(e.errorClass == .temporary) } else { Issue.record("2 should fail") }
        a = m.outcomesCommitted(); #expect(a == .dispose([0]))
        a = m.disposed([0]); a = m.disposedCommitted()
        #expect(a == .finished(DeliveryError(.sinkFailed, "connection lost")))
    }

    @Test func aFailedFlushCommitsNothing() {
        var m = M(deliver: Self.listed(2), leftovers: [], disposal: .delete)
        _ = m.start()
        _ = m.fetched([.deliver, .deliver])
        _ = m.intentsCommitted()
        _ = m.delivered(0, ref: "a")
        _ = m.delivered(1, ref: "b")
        let a = m.flushFailed(DeliveryError(.sinkFailed, "disk full"))
        #expect(a == .finished(DeliveryError(.sinkFailed, "disk full")))
    }

    @Test func batchesByBytesAsWellAsCount() {
        let sizes = [5 << 20, 5 << 20, 1024, 1024]
        let messages = sizes.enumerated().map { ListedMessage(ident: "\($0.offset)", size: $0.element, locator: .number($0.offset)) }
        var m = M(deliver: messages, leftovers: [], disposal: .keep, limits: .init(maxMessages: 10, maxBytes: 8 << 20))
        #expect(m.start() == .fetch(0..<1))
        _ = m.fetched([.skip(reason: "x")]); _ = m.intentsCommitted(); _ = m.flushed()
        #expect(m.outcomesCommitted() == .fetch(1..<4))
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
            var range = m.upcomingBatch
            var previous = 0
            while let r = range {
                let cost = messages[r].reduce(0) { $0 + Spool.memoryCost(expectedSize: $1.size!, options: spool) }
                #expect(previous + cost <= options.spoolBudgetLimit, "messages of \((1 << k) + 1) bytes: \(previous) + \(cost)")
                previous = cost
                range = m.batch(after: r)
            }
        }
    }

    @Test func watermarkStopsBelowTheFirstUnsettledUID() {
        var m = M(deliver: Self.listed(3, uids: true), leftovers: [], disposal: .keep)
        _ = m.start()
        _ = m.fetched([.deliver, .deliver, .deliver])
        _ = m.intentsCommitted()
        _ = m.delivered(0, ref: "a")
        _ = m.deliveryFailed(1, DeliveryError(.temporary, "later"))
        _ = m.delivered(2, ref: "c")
        _ = m.flushed()
        #expect(m.outcomesCommitted() == .moveWatermark(10))
        #expect(m.watermarkMoved() == .finished(nil))

        var all = M(deliver: Self.listed(3, uids: true), leftovers: [], disposal: .keep)
        _ = all.start()
        _ = all.fetched([.deliver, .claim(prior: SourceKey(account: "a", mailbox: "b", ident: "c"), targetRef: "r"), .skip(reason: "big")])
        _ = all.intentsCommitted()
        _ = all.delivered(0, ref: "a")
        _ = all.flushed()
        #expect(all.outcomesCommitted() == .moveWatermark(12))
    }

    /// Drives the machine with random outcomes and checks the protocol's invariants on every step:
    /// nothing is delivered before its intent is committed, nothing is disposed of before its
    /// delivery is committed, and every message ends settled or pending (never silently dropped).
    @Test(arguments: 0..<300)
    func randomRunsKeepTheInvariants(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        let n = Int(rng.next() % 12)
        let disposal: Disposal = [.keep, .delete, .markSeen][Int(rng.next() % 3)]
        var m = M(deliver: Self.listed(n, size: Int(rng.next() % 5000)), leftovers: [], disposal: disposal,
                  limits: .init(maxMessages: Int(rng.next() % 4) + 1, maxBytes: 6000))
        var intentCommitted: Set<Int> = []
        var outcomeCommitted: [Int: M.Outcome] = [:]
        var delivered: Set<Int> = []
        var disposed: Set<Int> = []
        var fetched: Set<Int> = []
        var a = m.start()
        var steps = 0
        loop: while steps < 1000 {
            steps += 1
            switch a {
            case let .fetch(range):
                fetched.formUnion(range)
                a = m.fetched(range.map { _ in rng.next() % 8 == 0 ? .skip(reason: "s") : .deliver })
            case let .commitIntents(idx):
                intentCommitted.formUnion(idx)
                a = m.intentsCommitted()
            case let .deliver(i):
                #expect(intentCommitted.contains(i), "delivered \(i) before its intent was committed")
                #expect(!delivered.contains(i), "delivered \(i) twice")
                delivered.insert(i)
                switch rng.next() % 10 {
                case 0: a = m.deliveryFailed(i, DeliveryError(.permanent, "p"))
                case 1: a = m.deliveryFailed(i, DeliveryError(.temporary, "t"))
                case 2: a = m.deliveryFailed(i, DeliveryError(.sinkFailed, "s"))
                default: a = m.delivered(i, ref: "r\(i)")
                }
            case .flush:
                a = rng.next() % 20 == 0 ? m.flushFailed(DeliveryError(.sinkFailed, "f")) : m.flushed()
            case let .commitOutcomes(idx):
                for i in idx { outcomeCommitted[i] = m.outcome(i) }
                a = m.outcomesCommitted()
            case let .dispose(idx):
                for i in idx {
                    #expect(disposal != .keep)
                    guard case .delivered? = outcomeCommitted[i] else {
                        Issue.record("disposed of \(i) before its delivery was committed"); break loop
                    }
                    disposed.insert(i)
                }
                a = rng.next() % 15 == 0 ? m.disposeFailed(DeliveryError(.temporary, "d")) : m.disposed(idx)
            case .commitDisposed:
                a = m.disposedCommitted()
            case .moveWatermark:
                a = m.watermarkMoved()
            case .finished:
                break loop
            }
        }
        #expect(steps < 1000, "the machine did not finish")
    }
}
