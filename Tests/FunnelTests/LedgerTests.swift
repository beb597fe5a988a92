import Foundation
import GRDB
@testable import Funnel
import Testing

struct LedgerTests {
    let dir: TemporaryDirectory
    let ledger: Ledger

    init() throws {
        dir = try TemporaryDirectory()
        ledger = try Ledger(path: dir.file("sub/ledger.sqlite"))
    }

    func key(_ ident: String, uv: UInt32 = 0) -> SourceKey { SourceKey(account: "acct", mailbox: "INBOX", uidValidity: uv, ident: ident) }

    func intent(_ k: SourceKey, sha: String = "aa") -> PendingIntent {
        PendingIntent(key: k, sha256: sha, size: 10, messageID: "<m@x>", target: "T", targetMailbox: "INBOX",
                      watermark: TargetWatermark(uidValidity: 7, uidNext: 42))
    }

    /// Lookups by content go through the index on the hash's first 16 hex digits (a scan would
    /// make reconciling a renumbered mailbox quadratic), and the whole hash still decides.
    @Test func contentLookupsUseTheHashPrefixIndexAndCompareTheWholeHash() throws {
        let plan = try ledger.pool.read { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN SELECT COUNT(*) FROM message
                WHERE \(Ledger.sameContent) AND target = ? AND state IN ('delivered', 'disposed')
                """, arguments: ["0123456789abcdef", "0123456789abcdef00", "T"]).map { "\($0)" }.joined()
        }
        #expect(plan.contains("USING INDEX message_content_prefix"), "\(plan)")
        let a = String(repeating: "ab", count: 8) + String(repeating: "0", count: 48)
        let b = String(repeating: "ab", count: 8) + String(repeating: "1", count: 48)
        try ledger.markPending([intent(key("1"), sha: a), intent(key("2"), sha: b), intent(key("3"), sha: b)])
        try ledger.record([.delivered(key("1"), targetRef: "r1"), .delivered(key("2"), targetRef: "r2"),
                           .delivered(key("3"), targetRef: "r3")])
        #expect(try ledger.deliveredCopies(target: "T", sha256: a) == 1)
        #expect(try ledger.deliveredCopies(target: "T", sha256: b) == 2)
        #expect(try ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: b).sorted() == ["r2", "r3"])
    }

    @Test func walksPendingDeliveredDisposed() throws {
        let k = key("1")
        #expect(try ledger.entry(k) == nil)
        try ledger.markPending([intent(k)])
        #expect(try ledger.entry(k)?.state == .pending)
        let pending = try ledger.pending(account: "acct")
        #expect(pending.count == 1)
        #expect(pending.first?.watermark == TargetWatermark(uidValidity: 7, uidNext: 42))
        #expect(pending.first?.messageID == "<m@x>")
        try ledger.record([.delivered(k, targetRef: "new/x")])
        #expect(try ledger.entry(k)?.state == .delivered)
        #expect(try ledger.pending(account: "acct").isEmpty)
        try ledger.markDisposed([k], how: .delete)
        #expect(try ledger.entry(k) == LedgerEntry(state: .disposed, attempts: 1, errorClass: nil, disposal: "delete"))
    }

    /// A batch's rows go several to a statement (`Ledger.rowsPerStatement`): larger batches, rows
    /// that were there before, outcomes of two mailboxes in one call and a failure between
    /// deliveries all end as they would one row at a time.
    @Test func batchesOfManyRowsEndAsOneRowAtATimeWould() throws {
        let n = Ledger.rowsPerStatement[0] * 2 + 23
        func other(_ i: Int) -> SourceKey { SourceKey(account: "acct", mailbox: "Sent", uidValidity: 9, ident: "\(i)") }
        let keys = (1...n).map { key("\($0)", uv: 5) }
        // Before the batch: one failed (retried: attempts 2), one delivered (left alone).
        try ledger.markPending([intent(keys[3]), intent(keys[70])])
        try ledger.record([.failed(keys[3], DeliveryError(.temporary, "421")), .delivered(keys[70], targetRef: "old")])
        try ledger.markPending(keys.enumerated().map { intent($1, sha: String(format: "%064x", $0)) } + (1...3).map { intent(other($0)) })
        #expect(try ledger.pending(account: "acct").count == n - 1 + 3)
        let record = try #require(try ledger.pending(account: "acct").first { $0.key == keys[100] })
        #expect(record.sha256 == String(format: "%064x", 100) && record.size == 10 && record.messageID == "<m@x>")
        #expect(record.watermark == TargetWatermark(uidValidity: 7, uidNext: 42) && record.targetMailbox == "INBOX")
        #expect(try ledger.entry(keys[3])?.attempts == 2)

        var outcomes: [DeliveryOutcome] = keys[..<100].map { .delivered($0, targetRef: "new/\($0.ident)") }
        outcomes.append(.failed(keys[100], DeliveryError(.temporary, "disk full")))
        outcomes += keys[101...].map { .delivered($0, targetRef: "new/\($0.ident)") }
        outcomes += [.delivered(other(1), targetRef: "sent/1"), .delivered(other(2), targetRef: "sent/2"),
                     .delivered(key("ghost", uv: 5), targetRef: "x")]
        try ledger.record(outcomes)

        let rows = try ledger.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT mailbox, ident, state, target_ref FROM message ORDER BY id")
        }
        var byKey: [String: (state: String, ref: String?)] = [:]
        for r in rows { byKey["\(r["mailbox"] as String)/\(r["ident"] as String)"] = (r["state"], r["target_ref"]) }
        for (i, k) in keys.enumerated() where i != 70 && i != 100 {
            #expect(byKey["INBOX/\(k.ident)"]?.state == "delivered" && byKey["INBOX/\(k.ident)"]?.ref == "new/\(k.ident)", "\(k)")
        }
        #expect(byKey["INBOX/71"]?.ref == "old")
        #expect(byKey["INBOX/101"]?.state == "failed")
        #expect(byKey["Sent/1"]?.ref == "sent/1" && byKey["Sent/2"]?.ref == "sent/2" && byKey["Sent/3"]?.state == "pending")
        #expect(byKey["INBOX/ghost"] == nil)
        #expect(try ledger.pending(account: "acct").map(\.key) == [other(3)])
    }

    /// Text is bound with its length: a NUL inside a value (a Message-ID is whatever the header
    /// held) is stored whole, not cut there.
    @Test func keepsAValueWithANULInsideWhole() throws {
        var i = intent(key("1"))
        i.messageID = "<a\u{0}b@x>"
        try ledger.markPending([i])
        // (GRDB reads text up to its first NUL, so the stored bytes are read as hex.)
        let stored = try ledger.pool.read { try String.fetchOne($0, sql: "SELECT hex(message_id) FROM message") }
        #expect(stored == Array("<a\u{0}b@x>".utf8).map { String(format: "%02X", $0) }.joined())
    }

    @Test func deliveredIsNeverRecordedWithoutAPendingIntent() throws {
        // `delivered` only follows `pending`: an outcome for an unknown key changes nothing.
        try ledger.record([.delivered(key("ghost"), targetRef: "x")])
        #expect(try ledger.entry(key("ghost")) == nil)
    }

    @Test func aDeliveredMessageCannotGoBackToPending() throws {
        let k = key("1")
        try ledger.markPending([intent(k)])
        try ledger.record([.delivered(k, targetRef: "r")])
        try ledger.markPending([intent(k)])
        #expect(try ledger.entry(k)?.state == .delivered)
    }

    @Test func failuresAreRetriedByClass() throws {
        let temp = key("t"), perm = key("p")
        try ledger.markPending([intent(temp), intent(perm)])
        try ledger.record([.failed(temp, DeliveryError(.temporary, "421 later")),
                           .failed(perm, DeliveryError(.permanent, "554 no"))])
        #expect(try ledger.entry(temp)?.isRetryable == true)
        #expect(try ledger.entry(perm)?.isRetryable == true)
        // A permanent failure gets three attempts in all.
        for _ in 0..<2 {
            try ledger.markPending([intent(perm)])
            try ledger.record([.failed(perm, DeliveryError(.permanent, "554 no"))])
        }
        let e = try #require(try ledger.entry(perm))
        #expect(e.attempts == 3)
        #expect(!e.isRetryable)
        // A temporary one is always retried.
        for _ in 0..<5 {
            try ledger.markPending([intent(temp)])
            try ledger.record([.failed(temp, DeliveryError(.temporary, "421 later"))])
        }
        #expect(try ledger.entry(temp)?.isRetryable == true)
    }

    @Test func skippedIsFinal() throws {
        let k = key("big")
        try ledger.commitIntents(pending: [], claims: [], outcomes: [.skipped(k, reason: "too large", sha256: nil, size: 9)])
        #expect(try ledger.entry(k)?.state == .skipped)
        #expect(try ledger.entry(k)?.isRetryable == false)
    }

    @Test func countsIdenticalDeliveriesAsAMultiset() throws {
        let a = key("a"), b = key("b")
        try ledger.markPending([intent(a, sha: "same"), intent(b, sha: "same")])
        #expect(try ledger.deliveredCopies(target: "T", sha256: "same") == 0)
        try ledger.record([.delivered(a, targetRef: "1"), .delivered(b, targetRef: "2")])
        #expect(try ledger.deliveredCopies(target: "T", sha256: "same") == 2)
        #expect(try ledger.deliveredCopies(target: "other", sha256: "same") == 0)
    }

    @Test func reconcilesANewUIDValidityCopyForCopy() throws {
        // Two identical messages delivered under UIDVALIDITY 1 …
        let old1 = key("1", uv: 1), old2 = key("2", uv: 1)
        try ledger.markPending([intent(old1, sha: "twin"), intent(old2, sha: "twin")])
        try ledger.record([.delivered(old1, targetRef: "r1"), .delivered(old2, targetRef: "r2")])
        // … then the server renumbers: three copies under UIDVALIDITY 2. Two take over, the third is new.
        var claimed: Set<SourceKey> = []
        var results: [PriorCopy?] = []
        for ident in ["10", "11", "12"] {
            let newKey = key(ident, uv: 2)
            let prior = try ledger.priorCopy(for: newKey, sha256: "twin", target: "T") { !claimed.contains($0) && $0.uidValidity != 2 }
            if let prior {
                claimed.insert(prior.key)
                try ledger.commitIntents(pending: [], claims: [Claim(key: newKey, prior: prior, target: "T", targetMailbox: "INBOX", sha256: "twin", size: 10)], outcomes: [])
            }
            results.append(prior)
        }
        #expect(results.compactMap { $0?.targetRef } == ["r1", "r2"])
        #expect(results[2] == nil)
        #expect(try ledger.entry(key("10", uv: 2))?.state == .delivered)
        // A claimed copy cannot be claimed again by a later run (the new keys are listed, so theirs
        // belong to them; the old ones are superseded).
        #expect(try ledger.priorCopy(for: key("13", uv: 2), sha256: "twin", target: "T") { $0.uidValidity != 2 } == nil)
    }

    @Test func watermarkMovesForwardOnlyWithinAUIDValidity() throws {
        try ledger.setWatermark(account: "acct", mailbox: "INBOX", uidValidity: 5, highestUID: 10)
        try ledger.setWatermark(account: "acct", mailbox: "INBOX", uidValidity: 5, highestUID: 7)
        #expect(try ledger.watermark(account: "acct", mailbox: "INBOX")?.highestUID == 10)
        try ledger.setWatermark(account: "acct", mailbox: "INBOX", uidValidity: 6, highestUID: 3)
        let w = try #require(try ledger.watermark(account: "acct", mailbox: "INBOX"))
        #expect(w.uidValidity == 6 && w.highestUID == 3)
    }

    @Test func survivesReopeningAndReportsStatus() throws {
        let k = key("1")
        let run = try ledger.beginRun(account: "acct", name: "old isp", target: "T")
        try ledger.markPending([intent(k)])
        var s = RunSummary()
        s.delivered = 1
        try ledger.finishRun(run, summary: s, error: nil)
        let reopened = try Ledger(path: dir.file("sub/ledger.sqlite"))
        #expect(try reopened.entry(k)?.state == .pending)
        let status = try reopened.status()
        #expect(status.count == 1)
        #expect(status.first?.name == "old isp")
        #expect(status.first?.counts["pending"] == 1)
        #expect(status.first?.lastSuccess != nil)
    }

    @Test func usesWALAndFullSync() throws {
        let mode = try ledger.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let sync = try ledger.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(sync == 2)
    }
}
