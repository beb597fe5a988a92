import Foundation
import FunnelModel
import FunnelTestSupport
import GRDB
@testable import LedgerSQLite
import Synchronization
import Testing

/// What only the SQLite ledger has: its file, its indexes and how it binds values. The rules every
/// ledger keeps are in `LedgerConformanceTests`.
struct SQLiteLedgerTests {
    let dir: TemporaryDirectory
    let ledger: SQLiteLedger

    init() throws {
        dir = try TemporaryDirectory()
        ledger = try SQLiteLedger(path: dir.file("sub/ledger.sqlite"))
    }

    func key(_ ident: String) -> SourceKey { SourceKey(account: "acct", mailbox: "INBOX", ident: ident) }

    func intent(_ k: SourceKey, sha: String = "aa") -> PendingIntent {
        PendingIntent(key: k, sha256: sha, size: 10, messageID: "<m@x>", target: "T", targetMailbox: "INBOX",
                      watermark: TargetWatermark(uidValidity: 7, uidNext: 42))
    }

    /// Lookups by content go through the index on the hash's first 16 hex digits (a scan would
    /// make reconciling a renumbered mailbox quadratic), and the whole hash still decides.
    @Test func contentLookupsUseTheHashPrefixIndexAndCompareTheWholeHash() async throws {
        let plan = try await ledger.pool.read { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN SELECT COUNT(*) FROM message
                WHERE \(SQLiteLedger.sameContent) AND target = ? AND state IN ('delivered', 'disposed')
                """, arguments: ["0123456789abcdef", "0123456789abcdef00", "T"]).map { "\($0)" }.joined()
        }
        #expect(plan.contains("USING INDEX message_content_prefix"), "\(plan)")
        let a = String(repeating: "ab", count: 8) + String(repeating: "0", count: 48)
        let b = String(repeating: "ab", count: 8) + String(repeating: "1", count: 48)
        try await ledger.markPending([intent(key("1"), sha: a), intent(key("2"), sha: b), intent(key("3"), sha: b)])
        try await ledger.record([.delivered(key("1"), targetRef: "r1"), .delivered(key("2"), targetRef: "r2"),
                                 .delivered(key("3"), targetRef: "r3")])
        #expect(try ledger.deliveredCopies(target: "T", sha256: a) == 1)
        #expect(try ledger.deliveredCopies(target: "T", sha256: b) == 2)
        #expect(try ledger.deliveredRefs(target: "T", targetMailbox: "INBOX", sha256: b).sorted() == ["r2", "r3"])
    }

    /// A batch's rows go several to a statement, in the few shapes of `rowsPerStatement`.
    @Test func writesInStatementsOfAFewShapes() {
        #expect(SQLiteLedger.rowsPerStatement == [64, 16, 4, 1])
        #expect([151, 64, 63, 16, 5, 1].map(SQLiteLedger.statementRows) == [64, 64, 16, 16, 4, 1])
    }

    /// Text is bound with its length: a NUL inside a value (a Message-ID is whatever the header
    /// held) is stored whole, not cut there.
    @Test func keepsAValueWithANULInsideWhole() async throws {
        var i = intent(key("1"))
        i.messageID = "<a\u{0}b@x>"
        try await ledger.markPending([i])
        // (GRDB reads text up to its first NUL, so the stored bytes are read as hex.)
        let stored = try await ledger.pool.read { try String.fetchOne($0, sql: "SELECT hex(message_id) FROM message") }
        #expect(stored == Array("<a\u{0}b@x>".utf8).map { String(format: "%02X", $0) }.joined())
    }

    @Test func usesWALAndFullSync() throws {
        let mode = try ledger.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let sync = try ledger.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(sync == 2)
    }

    @Test func ledgerCommitsQueuedTogetherShareATransactionAndFailAlone() async throws {
        let dir = try TemporaryDirectory()
        let ledger = try SQLiteLedger(path: dir.file("ledger.sqlite"))
        let started = Mutex(false)
        let gate = DispatchSemaphore(value: 0)
        let first = Task {
            try await ledger.commitTogether { _ in
                started.withLock { $0 = true }
                gate.wait()
            }
        }
        try await waitUntil { started.withLock { $0 } }
        let key = SourceKey(account: "acct", mailbox: "INBOX", uidValidity: 1, ident: "7")
        let intent = PendingIntent(key: key, sha256: "aa", size: 10, messageID: "<m@x>", target: "T",
                                   targetMailbox: "INBOX", watermark: TargetWatermark())
        let good = Task { try await ledger.commitIntents(pending: [intent], claims: [], outcomes: []) }
        try await waitUntil { ledger.commits.waiting == 1 }
        let bad = Task { try await ledger.commitTogether { db in try db.execute(sql: "INSERT INTO nowhere VALUES (1)") } }
        try await waitUntil { ledger.commits.waiting == 2 }
        gate.signal()
        try await first.value
        try await good.value
        do {
            try await bad.value
            Issue.record("a failing commit succeeded")
        } catch let error as FunnelError {
            #expect("\(error)".contains("nowhere"))
        }
        #expect(try ledger.entry(key)?.state == .pending)
    }

    /// A ledger written before records were kept per target: each row moves to its source and
    /// target's account (a failure, a watermark or a schedule to the latest run's target), so
    /// nothing already delivered is delivered again into that target, and another target starts empty.
    @Test func aLedgerKeptPerSourceMovesToPerSourceAndTarget() async throws {
        let path = dir.file("old.sqlite")
        let queue = try DatabaseQueue(path: path)
        try SQLiteLedger.migrator.migrate(queue, upTo: "v3: content index on a hash prefix")
        try await queue.write { db in
            try db.execute(sql: """
                INSERT INTO message (account, mailbox, uid_validity, ident, state, target, target_mailbox, sha256, created_at, updated_at)
                    VALUES ('src', 'INBOX', 5, '1', 'delivered', 'T1', 'INBOX', 'aa', 0, 0);
                INSERT INTO message (account, mailbox, uid_validity, ident, state, error_class, created_at, updated_at)
                    VALUES ('src', 'INBOX', 5, '2', 'failed', 'temporary', 0, 0);
                INSERT INTO watermark VALUES ('src', 'INBOX', 5, 1, 0);
                INSERT INTO run (account, name, target, started_at, finished_at) VALUES ('src', 'old', 'T0', 0, 1);
                INSERT INTO run (account, name, target, started_at, finished_at) VALUES ('src', 'old', 'T1', 2, 3);
                INSERT INTO schedule VALUES ('src', 'old', NULL, 'idle', 0);
                """)
        }
        try queue.close()

        let ledger = try SQLiteLedger(path: path)
        let t1 = LedgerAccount.of(source: "src", target: "T1")
        let entries = try await ledger.entries(account: t1, mailbox: "INBOX", uidValidity: 5, idents: ["1", "2"])
        #expect(entries["1"]?.state == .delivered)
        #expect(entries["2"]?.state == .failed)
        #expect(try await ledger.watermark(account: t1, mailbox: "INBOX") == SourceWatermark(uidValidity: 5, highestUID: 1))
        let other = LedgerAccount.of(source: "src", target: "T2")
        #expect(try await ledger.entries(account: other, mailbox: "INBOX", uidValidity: 5, idents: ["1"]).isEmpty)
        #expect(try await ledger.watermark(account: other, mailbox: "INBOX") == nil)
        let status = try await ledger.status()
        let current = try #require(status.first { $0.target == "T1" })
        #expect(current.source == "src")
        #expect(current.counts == ["delivered": 1, "failed": 1])
        #expect(current.waiting == "idle")
        #expect(status.first { $0.target == "T0" }?.counts.isEmpty == true)
    }
}
