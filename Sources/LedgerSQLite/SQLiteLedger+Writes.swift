import FunnelModel
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

extension SQLiteLedger {
    // Each call is one transaction (a group commit).

    static func insertPending(_ db: Database, _ intents: [PendingIntent], now: Double) throws {
        // Several rows a statement (`rowsPerStatement`): one statement per row cost more in binding
        // (GRDB's) and in SQLite's per-statement work than the rows themselves.
        var rest = intents[...]
        while !rest.isEmpty {
            let rows = rest.prefix(statementRows(for: rest.count))
            rest = rest.dropFirst(rows.count)
            var statement = try BoundStatement(db, sql: """
                INSERT INTO message (account, mailbox, uid_validity, ident, state, target, target_mailbox, sha256,
                                     size, message_id, target_uidvalidity, target_uidnext, attempts, created_at, updated_at)
                VALUES \(repeatElement("(?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)", count: rows.count).joined(separator: ", "))
                ON CONFLICT (account, mailbox, uid_validity, ident) DO UPDATE SET
                    state = 'pending', target = excluded.target, target_mailbox = excluded.target_mailbox,
                    sha256 = excluded.sha256, size = excluded.size, message_id = excluded.message_id,
                    target_uidvalidity = excluded.target_uidvalidity, target_uidnext = excluded.target_uidnext,
                    attempts = message.attempts + 1, updated_at = excluded.updated_at
                WHERE message.state IN ('failed', 'pending')
                """)
            for i in rows {
                statement.bind(i.key.account)
                statement.bind(i.key.mailbox)
                statement.bind(Int64(i.key.uidValidity))
                statement.bind(i.key.ident)
                statement.bind(i.target)
                statement.bind(i.targetMailbox)
                statement.bind(i.sha256)
                statement.bind(Int64(i.size))
                statement.bind(i.messageID)
                statement.bind(i.watermark.uidValidity.map { Int64($0) })
                statement.bind(i.watermark.uidNext.map { Int64($0) })
                statement.bind(now)
                statement.bind(now)
            }
            try statement.run()
        }
    }

    /// The row counts statements are written with: 64 rows of 13 values keep under the 999
    /// variables older SQLite builds allow. Only these few shapes, so GRDB's statement cache
    /// stays small (it keeps a compiled statement for every shape it has run).
    static let rowsPerStatement = [64, 16, 4, 1]

    /// The most rows of `rowsPerStatement` that `count` rows fill.
    static func statementRows(for count: Int) -> Int {
        rowsPerStatement.first { $0 <= count } ?? 1
    }

    public func record(_ outcomes: [DeliveryOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        let now = self.now
        try await commitTogether { db in try Self.insertOutcomes(db, outcomes, now: now) }
    }

    /// Group commit: `body` runs in a transaction shared with the commits submitted while the one
    /// before ran (a batch's outcomes and a later batch's intents), each in a savepoint of its own,
    /// so one that fails is rolled back alone. One fsync for all: commits queue behind a slow disk
    /// instead of each waiting for its own. Runs on a thread of its own (see `GroupQueue`).
    public func commitTogether(_ body: @escaping @Sendable (Database) throws -> Void) async throws {
        try await commits.submit(body) { [self] bodies in
            if bodies.count == 1 { return [Result { try write(bodies[0]) }] }
            var results: [Result<Void, Error>] = []
            do {
                try write { db in
                    results = bodies.map { body in
                        Result { try db.inSavepoint { try body(db); return .commit } }.mapError { error in
                            (error as? DatabaseError).map { FunnelError.ledger(path: path, message: $0.message ?? "\($0)") }
                                ?? error
                        }
                    }
                }
            } catch {
                return bodies.map { _ in .failure(error) }
            }
            return results
        }
    }

    static func insertOutcomes(_ db: Database, _ outcomes: [DeliveryOutcome], now: Double) throws {
        // Deliveries (nearly every outcome) go in runs of one source mailbox, several rows a
        // statement; the rest one by one. Either way in the order given.
        var run: [(key: SourceKey, ref: String)] = []
        func flushRun() throws {
            guard let first = run.first?.key else { return }
            var rest = run[...]
            while !rest.isEmpty {
                let rows = rest.prefix(statementRows(for: rest.count))
                rest = rest.dropFirst(rows.count)
                var statement = try BoundStatement(db, sql: """
                    UPDATE message SET state = 'delivered', target_ref = v.column2, error_class = NULL, error_text = NULL,
                        updated_at = ?
                    FROM (VALUES \(repeatElement("(?, ?)", count: rows.count).joined(separator: ", "))) AS v
                    WHERE message.account = ? AND message.mailbox = ? AND message.uid_validity = ?
                      AND message.ident = v.column1 AND message.state = 'pending'
                    """)
                statement.bind(now)
                for (key, ref) in rows {
                    statement.bind(key.ident)
                    statement.bind(ref)
                }
                statement.bind(first.account)
                statement.bind(first.mailbox)
                statement.bind(Int64(first.uidValidity))
                try statement.run()
            }
            run.removeAll(keepingCapacity: true)
        }
        for outcome in outcomes {
            if case let .delivered(key, ref) = outcome {
                if let first = run.first?.key,
                   first.account != key.account || first.mailbox != key.mailbox || first.uidValidity != key.uidValidity {
                    try flushRun()
                }
                run.append((key, ref))
                continue
            }
            try flushRun()
            try insertOutcome(db, outcome, now: now)
        }
        try flushRun()
    }

    /// A failure or a skip (deliveries go through `insertOutcomes`' runs).
    static func insertOutcome(_ db: Database, _ outcome: DeliveryOutcome, now: Double) throws {
        switch outcome {
        case let .delivered(key, ref):
            try insertOutcomes(db, [.delivered(key, targetRef: ref)], now: now)
        case let .failed(key, error):
            try db.cachedStatement(sql: """
                INSERT INTO message (account, mailbox, uid_validity, ident, state, error_class, error_text,
                                     attempts, created_at, updated_at)
                VALUES (?, ?, ?, ?, 'failed', ?, ?, 1, ?, ?)
                ON CONFLICT (account, mailbox, uid_validity, ident) DO UPDATE SET
                    state = 'failed', error_class = excluded.error_class, error_text = excluded.error_text,
                    updated_at = excluded.updated_at,
                    attempts = CASE WHEN message.state = 'pending' THEN message.attempts ELSE message.attempts + 1 END
                WHERE message.state IN ('pending', 'failed')
                """).execute(arguments: [key.account, key.mailbox, Int64(key.uidValidity), key.ident,
                                 error.errorClass.rawValue, error.message, now, now])
        case let .skipped(key, reason, sha256, size):
            try db.cachedStatement(sql: """
                INSERT INTO message (account, mailbox, uid_validity, ident, state, reason, sha256, size,
                                     created_at, updated_at)
                VALUES (?, ?, ?, ?, 'skipped', ?, ?, ?, ?, ?)
                ON CONFLICT (account, mailbox, uid_validity, ident) DO UPDATE SET
                    state = 'skipped', reason = excluded.reason, updated_at = excluded.updated_at
                WHERE message.state IN ('pending', 'failed')
                """).execute(arguments: [key.account, key.mailbox, Int64(key.uidValidity), key.ident, reason,
                                 sha256, size, now, now])
        }
    }

    public func markDisposed(_ keys: [SourceKey], how: Disposal) throws {
        guard !keys.isEmpty, how != .keep else { return }
        let now = self.now
        try write { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE message SET state = 'disposed', disposal = ?, updated_at = ?
                WHERE account = ? AND mailbox = ? AND uid_validity = ? AND ident = ? AND state IN ('delivered', 'disposed')
                """)
            for key in keys {
                try statement.execute(arguments: [how.rawValue, now, key.account, key.mailbox,
                                                  Int64(key.uidValidity), key.ident])
            }
        }
    }

    public func priorCopies(of key: SourceKey, sha256: String, target: String) throws -> [PriorCopy] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT uid_validity, ident, target_ref, message_id FROM message
                WHERE \(Self.sameContent) AND target = ? AND account = ? AND mailbox = ?
                  AND state IN ('delivered', 'disposed') AND superseded_by IS NULL
                  AND (disposal IS NULL OR disposal != 'delete')
                  AND NOT (uid_validity = ? AND ident = ?)
                ORDER BY id
                """), arguments: [Self.hashPrefix(sha256), sha256, target, key.account, key.mailbox,
                                   Int64(key.uidValidity), key.ident]).map { row in
                PriorCopy(key: SourceKey(account: key.account, mailbox: key.mailbox,
                                         uidValidity: UInt32(truncatingIfNeeded: row["uid_validity"] as Int64),
                                         ident: row["ident"]),
                          targetRef: row["target_ref"] ?? "", messageID: row["message_id"])
            }
        }
    }

    public func commitIntents(pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome]) async throws {
        guard !pending.isEmpty || !claims.isEmpty || !outcomes.isEmpty else { return }
        try await commitTogether(Self.intents(pending: pending, claims: claims, outcomes: outcomes, now: now))
    }

    private static func intents(pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome],
                                now: Double) -> @Sendable (Database) throws -> Void {
        { db in
            try Self.insertPending(db, pending, now: now)
            for claim in claims {
                let k = claim.key
                try db.cachedStatement(sql: """
                    UPDATE message SET superseded_by = ?, updated_at = ?
                    WHERE account = ? AND mailbox = ? AND uid_validity = ? AND ident = ?
                    """).execute(arguments: ["\(k.uidValidity)/\(k.ident)", now, k.account, k.mailbox,
                                     Int64(claim.prior.key.uidValidity), claim.prior.key.ident])
                try db.cachedStatement(sql: """
                    INSERT INTO message (account, mailbox, uid_validity, ident, state, target, target_mailbox, sha256,
                                         size, message_id, target_ref, reason, attempts, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'delivered', ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                    ON CONFLICT (account, mailbox, uid_validity, ident) DO UPDATE SET
                        state = 'delivered', target = excluded.target, sha256 = excluded.sha256,
                        target_ref = excluded.target_ref, reason = excluded.reason, updated_at = excluded.updated_at
                    """).execute(arguments: [k.account, k.mailbox, Int64(k.uidValidity), k.ident, claim.target,
                                     claim.targetMailbox, claim.sha256, claim.size, claim.prior.messageID,
                                     claim.prior.targetRef,
                                     "reconciled by content with \(claim.prior.key.uidValidity)/\(claim.prior.key.ident)",
                                     now, now])
            }
            try Self.insertOutcomes(db, outcomes, now: now)
        }
    }

    public func setWatermark(_ mark: SourceWatermark, account: String, mailbox: String) throws {
        try write { db in
            try db.cachedStatement(sql: """
                INSERT INTO watermark (account, mailbox, uid_validity, highest_uid, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (account, mailbox) DO UPDATE SET
                    highest_uid = CASE WHEN watermark.uid_validity = excluded.uid_validity
                                       THEN MAX(watermark.highest_uid, excluded.highest_uid) ELSE excluded.highest_uid END,
                    uid_validity = excluded.uid_validity, updated_at = excluded.updated_at
                """).execute(arguments: [account, mailbox, Int64(mark.uidValidity), Int64(mark.highestUID), now])
        }
    }
}
