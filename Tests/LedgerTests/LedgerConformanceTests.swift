import Foundation
import FunnelModel
import FunnelTestSupport
import LedgerSQLite
import Synchronization
import Testing

/// A ledger implementation under test: how to open one over a directory, as a process would, and
/// open it again later (the same directory reaches the same rows).
struct LedgerStore: Sendable, CustomTestStringConvertible {
    let name: String
    let open: @Sendable (_ dir: String, _ clock: @escaping @Sendable () -> Date) throws -> any Ledger

    var testDescription: String { name }

    static let sqlite = LedgerStore(name: "SQLite") { dir, clock in
        try SQLiteLedger(path: "\(dir)/sub/ledger.sqlite", clock: clock)
    }

    /// One in-memory ledger per directory, so that "opening it again" finds what was written.
    static let memory = LedgerStore(name: "memory") { dir, clock in
        opened.withLock { all in
            if let l = all[dir] { return l }
            let l = MemoryLedger(clock: clock)
            all[dir] = l
            return l
        }
    }
    private static let opened = Mutex<[String: MemoryLedger]>([:])

    static let all = [sqlite, memory]
}

/// What every `Ledger` must do, run against each implementation: the rules the engine relies on.
struct LedgerConformanceTests {
    func key(_ ident: String, uv: UInt32 = 0) -> SourceKey { SourceKey(account: "acct", mailbox: "INBOX", uidValidity: uv, ident: ident) }

    func intent(_ k: SourceKey, sha: String = "aa") -> PendingIntent {
        PendingIntent(key: k, sha256: sha, size: 10, messageID: "<m@x>", target: "T", targetMailbox: "INBOX",
                      watermark: TargetWatermark(uidValidity: 7, uidNext: 42))
    }

    func open(_ store: LedgerStore, _ dir: TemporaryDirectory, clock: @escaping @Sendable () -> Date = { Date() }) throws -> any Ledger {
        try store.open(dir.path, clock)
    }

    @Test(arguments: LedgerStore.all) func walksPendingDeliveredDisposed(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let k = key("1")
        #expect(try await ledger.entry(k) == nil)
        try await ledger.markPending([intent(k)])
        #expect(try await ledger.entry(k)?.state == .pending)
        let pending = try await ledger.pending(account: "acct")
        #expect(pending.count == 1)
        #expect(pending.first?.watermark == TargetWatermark(uidValidity: 7, uidNext: 42))
        #expect(pending.first?.messageID == "<m@x>")
        try await ledger.record([.delivered(k, targetRef: "new/x")])
        #expect(try await ledger.entry(k)?.state == .delivered)
        #expect(try await ledger.pending(account: "acct").isEmpty)
        #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: "aa") == ["new/x"])
        try await ledger.markDisposed([k], how: .delete)
        let e = try #require(try await ledger.entry(k))
        #expect(e.state == .disposed && e.attempts == 1 && e.errorClass == nil && e.disposal == "delete")
    }

    /// Large batches, rows that were there before, outcomes of two mailboxes in one call and a failure
    /// between deliveries all end as they would one row at a time.
    @Test(arguments: LedgerStore.all) func batchesEndAsOneRowAtATimeWould(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let n = 64 * 2 + 23
        func other(_ i: Int) -> SourceKey { SourceKey(account: "acct", mailbox: "Sent", uidValidity: 9, ident: "\(i)") }
        func sha(_ i: Int) -> String { String(format: "%064x", i) }
        let keys = (1...n).map { key("\($0)", uv: 5) }
        // Before the batch: one failed (retried: attempts 2), one delivered (left alone).
        try await ledger.markPending([intent(keys[3], sha: sha(3)), intent(keys[70], sha: sha(70))])
        try await ledger.record([.failed(keys[3], DeliveryError(.temporary, "421")), .delivered(keys[70], targetRef: "old")])
        try await ledger.markPending(keys.enumerated().map { intent($1, sha: sha($0)) } + (1...3).map { intent(other($0), sha: sha(1000 + $0)) })
        #expect(try await ledger.pending(account: "acct").count == n - 1 + 3)
        let record = try #require(try await ledger.pending(account: "acct").first { $0.key == keys[100] })
        #expect(record.sha256 == sha(100) && record.size == 10 && record.messageID == "<m@x>")
        #expect(record.watermark == TargetWatermark(uidValidity: 7, uidNext: 42) && record.targetMailbox == "INBOX")
        #expect(try await ledger.entry(keys[3])?.attempts == 2)

        var outcomes: [DeliveryOutcome] = keys[..<100].map { .delivered($0, targetRef: "new/\($0.ident)") }
        outcomes.append(.failed(keys[100], DeliveryError(.temporary, "disk full")))
        outcomes += keys[101...].map { .delivered($0, targetRef: "new/\($0.ident)") }
        outcomes += [.delivered(other(1), targetRef: "sent/1"), .delivered(other(2), targetRef: "sent/2"),
                     .delivered(key("ghost", uv: 5), targetRef: "x")]
        try await ledger.record(outcomes)

        for (i, k) in keys.enumerated() where i != 70 && i != 100 {
            #expect(try await ledger.entry(k)?.state == .delivered, "\(k)")
            #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: sha(i)) == ["new/\(k.ident)"], "\(k)")
        }
        #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: sha(70)) == ["old"])
        #expect(try await ledger.entry(keys[100])?.state == .failed)
        #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: sha(1001)) == ["sent/1"])
        #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: sha(1002)) == ["sent/2"])
        #expect(try await ledger.entry(other(3))?.state == .pending)
        #expect(try await ledger.entry(key("ghost", uv: 5)) == nil)
        #expect(try await ledger.pending(account: "acct").map(\.key) == [other(3)])
        let entries = try await ledger.entries(account: "acct", mailbox: "INBOX", uidValidity: 5, idents: ["1", "101", "ghost"])
        #expect(entries.mapValues(\.state) == ["1": .delivered, "101": .failed])
        #expect(try await ledger.idents(account: "acct", mailbox: "INBOX", uidValidity: 5, state: .failed) == ["101"])
    }

    @Test(arguments: LedgerStore.all) func deliveredIsNeverRecordedWithoutAPendingIntent(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        // `delivered` only follows `pending`: an outcome for an unknown key changes nothing.
        try await ledger.record([.delivered(key("ghost"), targetRef: "x")])
        #expect(try await ledger.entry(key("ghost")) == nil)
    }

    @Test(arguments: LedgerStore.all) func aDeliveredMessageCannotGoBackToPending(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let k = key("1")
        try await ledger.markPending([intent(k)])
        try await ledger.record([.delivered(k, targetRef: "r")])
        try await ledger.markPending([intent(k)])
        #expect(try await ledger.entry(k)?.state == .delivered)
        try await ledger.record([.failed(k, DeliveryError(.temporary, "late"))])
        #expect(try await ledger.entry(k)?.state == .delivered)
    }

    @Test(arguments: LedgerStore.all) func failuresAreRetriedByClass(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let temp = key("t"), perm = key("p")
        try await ledger.markPending([intent(temp), intent(perm)])
        try await ledger.record([.failed(temp, DeliveryError(.temporary, "421 later")),
                                 .failed(perm, DeliveryError(.permanent, "554 no"))])
        #expect(try await ledger.entry(temp)?.isRetryable == true)
        #expect(try await ledger.entry(perm)?.isRetryable == true)
        // A permanent failure gets three attempts in all.
        for _ in 0..<2 {
            try await ledger.markPending([intent(perm)])
            try await ledger.record([.failed(perm, DeliveryError(.permanent, "554 no"))])
        }
        let e = try #require(try await ledger.entry(perm))
        #expect(e.attempts == 3)
        #expect(!e.isRetryable)
        // A temporary one is always retried.
        for _ in 0..<5 {
            try await ledger.markPending([intent(temp)])
            try await ledger.record([.failed(temp, DeliveryError(.temporary, "421 later"))])
        }
        #expect(try await ledger.entry(temp)?.isRetryable == true)
        // A failure with no intent before it (the source could not be read) is an attempt too.
        let unread = key("u")
        try await ledger.record([.failed(unread, DeliveryError(.permanent, "unreadable"))])
        try await ledger.record([.failed(unread, DeliveryError(.permanent, "unreadable"))])
        #expect(try await ledger.entry(unread)?.attempts == 2)
    }

    @Test(arguments: LedgerStore.all) func skippedIsFinal(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let k = key("big")
        try await ledger.commitIntents(pending: [], claims: [], outcomes: [.skipped(k, reason: "too large", sha256: nil, size: 9)])
        #expect(try await ledger.entry(k)?.state == .skipped)
        #expect(try await ledger.entry(k)?.isRetryable == false)
        try await ledger.markPending([intent(k)])
        #expect(try await ledger.entry(k)?.state == .skipped)
    }

    @Test(arguments: LedgerStore.all) func countsIdenticalDeliveriesAsAMultiset(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let a = key("a"), b = key("b")
        try await ledger.markPending([intent(a, sha: "same"), intent(b, sha: "same")])
        #expect(try await ledger.deliveredCopies(target: "T", sha256: "same") == 0)
        try await ledger.record([.delivered(a, targetRef: "1"), .delivered(b, targetRef: "2")])
        #expect(try await ledger.deliveredCopies(target: "T", sha256: "same") == 2)
        #expect(try await ledger.deliveredCopies(target: "other", sha256: "same") == 0)
        #expect(try await ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: "same").sorted() == ["1", "2"])
    }

    @Test(arguments: LedgerStore.all) func reconcilesANewUIDValidityCopyForCopy(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        // Two identical messages delivered under UIDVALIDITY 1 …
        let old1 = key("1", uv: 1), old2 = key("2", uv: 1)
        try await ledger.markPending([intent(old1, sha: "twin"), intent(old2, sha: "twin")])
        try await ledger.record([.delivered(old1, targetRef: "r1"), .delivered(old2, targetRef: "r2")])
        #expect(try await ledger.hasDeliveriesOutside(account: "acct", mailbox: "INBOX", uidValidity: 2))
        #expect(try await !ledger.hasDeliveriesOutside(account: "acct", mailbox: "INBOX", uidValidity: 1))
        // … then the server renumbers: three copies under UIDVALIDITY 2. Two take over, the third is new.
        var claimed: Set<SourceKey> = []
        var results: [PriorCopy?] = []
        for ident in ["10", "11", "12"] {
            let newKey = key(ident, uv: 2)
            let prior = try await ledger.priorCopies(of: newKey, sha256: "twin", target: "T")
                .first { !claimed.contains($0.key) && $0.key.uidValidity != 2 }
            if let prior {
                claimed.insert(prior.key)
                try await ledger.commitIntents(pending: [], claims: [Claim(key: newKey, prior: prior, target: "T", targetMailbox: "INBOX",
                                                                          sha256: "twin", size: 10)], outcomes: [])
            }
            results.append(prior)
        }
        #expect(results.compactMap { $0?.targetRef } == ["r1", "r2"])
        #expect(results[2] == nil)
        #expect(try await ledger.entry(key("10", uv: 2))?.state == .delivered)
        // A claimed copy cannot be claimed again by a later run (the new keys are listed, so theirs
        // belong to them; the old ones are superseded).
        #expect(try await ledger.priorCopies(of: key("13", uv: 2), sha256: "twin", target: "T").filter { $0.key.uidValidity != 2 }.isEmpty)
        #expect(try await !ledger.hasDeliveriesOutside(account: "acct", mailbox: "INBOX", uidValidity: 2))
    }

    /// A copy whose source was deleted is never claimed: it looks just like one renumbered.
    @Test(arguments: LedgerStore.all) func neverClaimsADeletedCopy(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let gone = key("1", uv: 1), seen = key("2", uv: 1)
        try await ledger.markPending([intent(gone, sha: "c"), intent(seen, sha: "c")])
        try await ledger.record([.delivered(gone, targetRef: "r1"), .delivered(seen, targetRef: "r2")])
        try await ledger.markDisposed([gone], how: .delete)
        try await ledger.markDisposed([seen], how: .markSeen)
        #expect(try await ledger.priorCopies(of: key("9", uv: 2), sha256: "c", target: "T").map(\.key) == [seen])
    }

    @Test(arguments: LedgerStore.all) func watermarkMovesForwardOnlyWithinAUIDValidity(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        try await ledger.setWatermark(SourceWatermark(uidValidity: 5, highestUID: 10), account: "acct", mailbox: "INBOX")
        try await ledger.setWatermark(SourceWatermark(uidValidity: 5, highestUID: 7), account: "acct", mailbox: "INBOX")
        #expect(try await ledger.watermark(account: "acct", mailbox: "INBOX")?.highestUID == 10)
        try await ledger.setWatermark(SourceWatermark(uidValidity: 6, highestUID: 3), account: "acct", mailbox: "INBOX")
        #expect(try await ledger.watermark(account: "acct", mailbox: "INBOX") == SourceWatermark(uidValidity: 6, highestUID: 3))
        #expect(try await ledger.watermark(account: "acct", mailbox: "Sent") == nil)
    }

    @Test(arguments: LedgerStore.all) func survivesReopeningAndReportsStatus(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let k = key("1")
        let run = try await ledger.beginRun(account: "acct", name: "old isp", target: "T")
        try await ledger.markPending([intent(k)])
        var s = RunSummary()
        s.delivered = 1
        try await ledger.finishRun(run, summary: s, error: nil)
        let failing = try await ledger.beginRun(account: "acct", name: "old isp", target: "T")
        try await ledger.finishRun(failing, summary: RunSummary(), error: "the server closed the connection")
        try await ledger.setSchedule(account: "acct", name: "old isp", next: nil, mode: "idle")
        let reopened = try open(store, dir)
        #expect(try await reopened.entry(k)?.state == .pending)
        let status = try await reopened.status()
        #expect(status.count == 1)
        #expect(status.first?.name == "old isp")
        #expect(status.first?.counts["pending"] == 1)
        #expect(status.first?.backlog == 1)
        #expect(status.first?.lastSuccess != nil)
        #expect(status.first?.lastError == "the server closed the connection")
        #expect(status.first?.waiting == "idle")
    }

    /// Status counts each message once: a row a new key took over after a UIDVALIDITY change is
    /// counted apart. A run that ended normally with some messages failed is a success, and its
    /// last error says how many failed.
    @Test(arguments: LedgerStore.all) func statusCountsEachMessageOnceAndFailedMessagesAreNoFailedRun(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let ledger = try open(store, dir)
        let run = try await ledger.beginRun(account: "acct", name: "old isp", target: "T")
        try await ledger.markPending([intent(key("1", uv: 1), sha: "a"), intent(key("2", uv: 1), sha: "b")])
        try await ledger.record([.delivered(key("1", uv: 1), targetRef: "r1"), .delivered(key("2", uv: 1), targetRef: "r2")])
        for (ident, sha) in [("1", "a"), ("2", "b")] {
            let prior = try #require(try await ledger.priorCopies(of: key(ident, uv: 2), sha256: sha, target: "T").first)
            try await ledger.commitIntents(pending: [], claims: [Claim(key: key(ident, uv: 2), prior: prior, target: "T",
                                                                       targetMailbox: "INBOX", sha256: sha, size: 10)], outcomes: [])
        }
        try await ledger.record([.failed(key("3", uv: 2), DeliveryError(.permanent, "refused"))])
        var s = RunSummary()
        s.delivered = 0
        s.failed = 1
        try await ledger.finishRun(run, summary: s, error: nil)
        let status = try #require(try await ledger.status().first)
        #expect(status.counts == ["delivered": 2, "failed": 1])
        #expect(status.superseded == 2)
        #expect(status.lastSuccess != nil)
        #expect(status.lastError == "1 message(s) failed")
    }

    /// Every row's time is the ledger's clock: a test can age rows without reaching into storage.
    @Test(arguments: LedgerStore.all) func stampsRowsWithItsClock(_ store: LedgerStore) async throws {
        let dir = try TemporaryDirectory()
        let then = Date(timeIntervalSince1970: 1_700_000_000)
        let ledger = try open(store, dir, clock: { then })
        try await ledger.markPending([intent(key("1"))])
        #expect(try await ledger.entry(key("1"))?.updatedAt == then)
        let listed = try await ledger.entries(account: "acct", mailbox: "INBOX", uidValidity: 0, idents: ["1"])
        #expect(listed["1"]?.updatedAt == then)
    }
}
