import Foundation
import GRDB

/// The figures of one run of one account, as `--json` prints them.
public struct RunSummary: Sendable, Codable, Equatable {
    public var listed = 0
    public var delivered = 0
    public var skipped = 0
    public var failed = 0
    /// Messages that hit a temporary failure and stay for the next run (counted in `failed` too).
    public var deferred = 0
    public var bytes = 0
    public var seconds = 0.0
    /// Of `seconds`, the time spent in the ledger (lookups and group commits with their fsyncs).
    public var ledgerSeconds = 0.0
    /// Dry runs only: how many messages a real run would deliver.
    public var wouldDeliver: Int?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case listed, delivered, skipped, failed, deferred, bytes, seconds
        case ledgerSeconds = "ledger_seconds"
        case wouldDeliver = "would_deliver"
    }

    public static func + (a: RunSummary, b: RunSummary) -> RunSummary {
        var s = a
        s.listed += b.listed
        s.delivered += b.delivered
        s.skipped += b.skipped
        s.failed += b.failed
        s.deferred += b.deferred
        s.bytes += b.bytes
        s.seconds += b.seconds
        s.ledgerSeconds += b.ledgerSeconds
        if a.wouldDeliver != nil || b.wouldDeliver != nil { s.wouldDeliver = (a.wouldDeliver ?? 0) + (b.wouldDeliver ?? 0) }
        return s
    }
}

/// One account as `mailfunnel status` shows it.
public struct AccountStatus: Sendable, Codable, Equatable {
    public var account: String
    public var name: String
    public var target: String?
    public var counts: [String: Int]
    public var lastRunStarted: Date?
    public var lastRunFinished: Date?
    public var lastSuccess: Date?
    public var lastError: String?
    /// Messages known to the ledger but not yet delivered (pending or failed and to be retried).
    public var backlog: Int = 0
    /// When the daemon will next look (nil without a daemon); `waiting` says how ("poll", "idle", "backoff").
    public var nextPoll: Date?
    public var waiting: String?
}

extension Ledger {
    /// Starts a run record for `mailfunnel status`.
    public func beginRun(account: String, name: String, target: String) throws -> Int64 {
        try write { db in
            try db.execute(sql: "INSERT INTO run (account, name, target, started_at) VALUES (?, ?, ?, ?)",
                           arguments: [account, name, target, Self.now])
            return db.lastInsertedRowID
        }
    }

    /// Closes a run record with its figures and the error that ended it, if any.
    public func finishRun(_ id: Int64, summary: RunSummary, error: String?) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE run SET finished_at = ?, listed = ?, delivered = ?, skipped = ?, failed = ?, deferred = ?,
                    bytes = ?, error = ? WHERE id = ?
                """, arguments: [Self.now, summary.listed, summary.delivered, summary.skipped, summary.failed,
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
                """, arguments: [account, name, next?.timeIntervalSince1970, mode, Self.now])
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
                SELECT account, state, COUNT(*) AS n FROM message GROUP BY account, state ORDER BY account
                """) {
                let account: String = row["account"]
                var s = entry(account)
                s.counts[row["state"]] = row["n"]
                byAccount[account] = s
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT r.account, r.name, r.target, r.started_at, r.finished_at, r.error,
                       (SELECT MAX(finished_at) FROM run s WHERE s.account = r.account AND s.error IS NULL
                            AND s.finished_at IS NOT NULL) AS last_success
                FROM run r WHERE r.id = (SELECT MAX(id) FROM run t WHERE t.account = r.account)
                """) {
                let account: String = row["account"]
                var s = entry(account)
                s.name = row["name"]
                s.target = row["target"]
                s.lastRunStarted = (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastRunFinished = (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastSuccess = (row["last_success"] as Double?).map(Date.init(timeIntervalSince1970:))
                s.lastError = row["error"]
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
