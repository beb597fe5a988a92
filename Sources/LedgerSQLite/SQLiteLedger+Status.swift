import FunnelModel
import Foundation
import GRDB

extension SQLiteLedger {
    /// Starts a run record for `mailfunnel status`.
    public func beginRun(account: String, name: String, target: String) throws -> RunID {
        try write { db in
            try db.execute(sql: "INSERT INTO run (account, name, target, started_at) VALUES (?, ?, ?, ?)",
                           arguments: [account, name, target, now])
            return db.lastInsertedRowID
        }
    }

    /// Closes a run record with its figures and the error that ended it, if any.
    public func finishRun(_ id: RunID, summary: RunSummary, error: String?) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE run SET finished_at = ?, listed = ?, delivered = ?, skipped = ?, failed = ?, deferred = ?,
                    bytes = ?, error = ? WHERE id = ?
                """, arguments: [now, summary.listed, summary.delivered, summary.skipped, summary.failed,
                                 summary.deferred, summary.bytes, error, id])
        }
    }

    /// The daemon records when it will look at an account next, and how.
    public func setSchedule(account: String, name: String, next: Date?, mode: String) throws {
        try write { db in
            try db.execute(sql: """
                INSERT INTO schedule (account, name, next_poll, mode, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (account) DO UPDATE SET name = excluded.name, next_poll = excluded.next_poll,
                    mode = excluded.mode, updated_at = excluded.updated_at
                """, arguments: [account, name, next?.timeIntervalSince1970, mode, now])
        }
    }

    /// Every account the ledger knows, with message counts by state and its latest runs.
    public func status() throws -> [AccountStatus] {
        try read { db in
            var byAccount: [String: AccountStatus] = [:]
            var order: [String] = []
            func entry(_ account: String) -> AccountStatus {
                if let s = byAccount[account] { return s }
                order.append(account)
                return AccountStatus(account: account, name: account, target: nil, counts: [:])
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT account, state, superseded_by IS NOT NULL AS superseded, COUNT(*) AS n FROM message
                GROUP BY account, state, superseded ORDER BY account
                """) {
                let account: String = row["account"]
                var s = entry(account)
                // A row a new key took over (a UIDVALIDITY change) is that message's past.
                if row["superseded"] as Bool { s.superseded += row["n"] as Int } else { s.counts[row["state"]] = row["n"] }
                byAccount[account] = s
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT r.account, r.name, r.target, r.started_at, r.finished_at, r.error, r.failed,
                       (SELECT MAX(finished_at) FROM run s WHERE s.account = r.account AND s.error IS NULL
                            AND s.finished_at IS NOT NULL) AS last_success
                FROM run r WHERE r.id = (SELECT MAX(id) FROM run t WHERE t.account = r.account)
                """) {
                let account: String = row["account"]
                var s = entry(account)
                s.name = row["name"]
                s.target = row["target"]
                s.source = LedgerAccount.source(of: account, target: row["target"])
                s.lastRunStarted = (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastRunFinished = (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastSuccess = (row["last_success"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastError = row["error"] ?? AccountStatus.failedMessages(row["failed"])
                byAccount[account] = s
            }
            for row in try Row.fetchAll(db, sql: "SELECT account, name, next_poll, mode FROM schedule") {
                let account: String = row["account"]
                var s = entry(account)
                s.name = row["name"]
                s.nextPoll = (row["next_poll"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.waiting = row["mode"]
                byAccount[account] = s
            }
            for (account, var s) in byAccount {
                s.backlog = (s.counts["pending"] ?? 0) + (s.counts["failed"] ?? 0)
                byAccount[account] = s
            }
            return order.compactMap { byAccount[$0] }
        }
    }
}
