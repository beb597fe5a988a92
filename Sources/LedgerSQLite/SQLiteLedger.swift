import FunnelModel
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The ledger in one SQLite file: WAL mode with `synchronous=FULL`, so a returned write is on disk.
/// A batch's intents and outcomes are group commits (`commitTogether`); reads run on the caller's
/// thread, writes of intents and outcomes on the commit queue's.
public final class SQLiteLedger: Ledger {
    public let path: String
    let pool: DatabasePool
    let commits = GroupQueue<@Sendable (Database) throws -> Void>(label: "mailfunnel.ledger")
    private let busy = Mutex<Duration>(.zero)
    /// What every row's `created_at` / `updated_at` reads; tests pass another.
    private let clock: @Sendable () -> Date

    /// The time spent in ledger calls (reads and commits, fsync included) since it was opened,
    /// summed over threads: what the ledger costs a run (`RunSummary.ledgerSeconds`).
    public var busyTime: Duration { busy.withLock { $0 } }

    private func timed<T>(_ body: () throws -> T) rethrows -> T {
        let clock = ContinuousClock()
        let start = clock.now
        defer { let spent = clock.now - start; busy.withLock { $0 += spent } }
        return try body()
    }

    /// `$XDG_DATA_HOME/mailfunnel/ledger.sqlite`, or `~/.local/share/mailfunnel/ledger.sqlite`.
    public static var defaultPath: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.local/share")
        return base + "/mailfunnel/ledger.sqlite"
    }

    /// Opens (creating and migrating when needed) the ledger at `path`.
    public init(path: String, readOnly: Bool = false, clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.path = path
        self.clock = clock
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        // A run touches the index pages of the rows it handles, not the whole ledger: 1 MiB of page
        // cache per connection (SQLite's default is 2 MiB) keeps memory flat as the ledger grows.
        config.maximumReaderCount = 2
        // A statement of many rows keeps a statement journal (to undo itself alone if it fails
        // half way): in memory, not in a temporary file written for every batch.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -1024; PRAGMA temp_store = MEMORY") }
        do {
            if !readOnly {
                let dir = (path as NSString).deletingLastPathComponent
                if !dir.isEmpty {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                }
            }
            pool = try DatabasePool(path: path, configuration: config)
            if !readOnly {
                // GRDB sets synchronous=NORMAL on the writer when it enables WAL: a commit could then
                // roll back after a power loss, and a source message could be deleted on the strength
                // of a `delivered` that is gone. FULL makes every commit durable.
                try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
                try Self.migrator.migrate(pool)
            }
        } catch let error as DatabaseError {
            throw FunnelError.ledger(path: path, message: error.message ?? "\(error)")
        } catch {
            throw FunnelError.ledger(path: path, message: "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY,
                    account TEXT NOT NULL,
                    mailbox TEXT NOT NULL,
                    uid_validity INTEGER NOT NULL DEFAULT 0,
                    ident TEXT NOT NULL,
                    state TEXT NOT NULL
                        CHECK (state IN ('pending', 'delivered', 'disposed', 'failed', 'skipped')),
                    target TEXT,
                    target_mailbox TEXT,
                    sha256 TEXT,
                    size INTEGER,
                    message_id TEXT,
                    target_uidvalidity INTEGER,
                    target_uidnext INTEGER,
                    target_ref TEXT,
                    disposal TEXT,
                    error_class TEXT,
                    error_text TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    reason TEXT,
                    superseded_by TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    UNIQUE (account, mailbox, uid_validity, ident)
                );
                -- Recovery reads pending rows at every start.
                CREATE INDEX message_pending ON message (account) WHERE state = 'pending';
                -- The per-target multiset of delivered content, and reconciliation by hash.
                CREATE INDEX message_content ON message (target, sha256);
                CREATE TABLE watermark (
                    account TEXT NOT NULL,
                    mailbox TEXT NOT NULL,
                    uid_validity INTEGER NOT NULL,
                    highest_uid INTEGER NOT NULL,
                    updated_at REAL NOT NULL,
                    PRIMARY KEY (account, mailbox)
                );
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY,
                    account TEXT NOT NULL,
                    name TEXT NOT NULL,
                    target TEXT NOT NULL,
                    started_at REAL NOT NULL,
                    finished_at REAL,
                    listed INTEGER NOT NULL DEFAULT 0,
                    delivered INTEGER NOT NULL DEFAULT 0,
                    skipped INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0,
                    deferred INTEGER NOT NULL DEFAULT 0,
                    bytes INTEGER NOT NULL DEFAULT 0,
                    error TEXT
                );
                CREATE INDEX run_account ON run (account, id);
                """)
        }
        m.registerMigration("v2: daemon schedule") { db in
            try db.execute(sql: """
                CREATE TABLE schedule (
                    account TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    next_poll REAL,
                    mode TEXT NOT NULL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        // Every batch adds its hashes at random places in the content index: with whole hex
        // hashes and target names in it, a batch of 100 messages touched about 70 of its pages,
        // most of each commit's WAL. The first 16 hex digits (64 bits) find a content as
        // surely, and the whole hash and the target are compared on the row.
        m.registerMigration("v3: content index on a hash prefix") { db in
            try db.execute(sql: """
                DROP INDEX message_content;
                CREATE INDEX message_content_prefix ON message (substr(sha256, 1, 16));
                """)
        }
        return m
    }

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try timed { try pool.write(body) }
        } catch let error as DatabaseError {
            throw FunnelError.ledger(path: path, message: error.message ?? "\(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try timed { try pool.read(body) }
        } catch let error as DatabaseError {
            throw FunnelError.ledger(path: path, message: error.message ?? "\(error)")
        }
    }

    var now: Double { clock().timeIntervalSince1970 }
}

extension SQLiteLedger {
    // MARK: reading

    /// The known state of the given messages of one source mailbox, by ident (one query a page).
    public func entries(account: String, mailbox: String, uidValidity: UInt32, idents: [String]) throws -> [String: LedgerEntry] {
        guard !idents.isEmpty else { return [:] }
        return try read { db in
            var out: [String: LedgerEntry] = [:]
            // SQLite allows 32,766 parameters; pages are far smaller, but stay safe.
            for chunk in stride(from: 0, to: idents.count, by: 10_000).map({ idents[$0..<min($0 + 10_000, idents.count)] }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT ident, state, attempts, error_class, disposal, updated_at FROM message
                    WHERE account = ? AND mailbox = ? AND uid_validity = ? AND ident IN (\(marks))
                    """, arguments: StatementArguments([account, mailbox, Int64(uidValidity)] + chunk.map { $0 as (any DatabaseValueConvertible) }))
                while let row = try rows.next() {
                    out[row["ident"]] = LedgerEntry(state: LedgerState(rawValue: row["state"]) ?? .failed,
                                                    attempts: row["attempts"], errorClass: row["error_class"],
                                                    disposal: row["disposal"],
                                                    updatedAt: (row["updated_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
                }
            }
            return out
        }
    }

    /// The idents of a source mailbox in one state (for the few `delivered` ones left undisposed).
    public func idents(account: String, mailbox: String, uidValidity: UInt32, state: LedgerState) throws -> Set<String> {
        try read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT ident FROM message WHERE account = ? AND mailbox = ? AND uid_validity = ? AND state = ?
                """, arguments: [account, mailbox, Int64(uidValidity), state.rawValue]))
        }
    }

    /// The entry of one message, or nil when the ledger has never seen it.
    public func entry(_ key: SourceKey) throws -> LedgerEntry? {
        try read { db in
            try Row.fetchOne(db, sql: """
                SELECT state, attempts, error_class, disposal, updated_at FROM message
                WHERE account = ? AND mailbox = ? AND uid_validity = ? AND ident = ?
                """, arguments: [key.account, key.mailbox, Int64(key.uidValidity), key.ident]).map { row in
                LedgerEntry(state: LedgerState(rawValue: row["state"]) ?? .failed, attempts: row["attempts"],
                            errorClass: row["error_class"], disposal: row["disposal"],
                            updatedAt: (row["updated_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    /// Every `pending` row of an account (all accounts when nil), for recovery.
    public func pending(account: String?) throws -> [PendingRecord] {
        try read { db in
            let sql = """
                SELECT account, mailbox, uid_validity, ident, sha256, size, message_id, target, target_mailbox,
                       target_uidvalidity, target_uidnext
                FROM message WHERE state = 'pending'
                """ + (account == nil ? "" : " AND account = ?") + " ORDER BY id"
            return try Row.fetchAll(db, sql: sql, arguments: account.map { [$0] } ?? []).map { row in
                PendingIntent(
                    key: SourceKey(account: row["account"], mailbox: row["mailbox"],
                                   uidValidity: UInt32(truncatingIfNeeded: row["uid_validity"] as Int64),
                                   ident: row["ident"]),
                    sha256: row["sha256"] ?? "", size: row["size"] ?? 0, messageID: row["message_id"],
                    target: row["target"] ?? "", targetMailbox: row["target_mailbox"] ?? "",
                    watermark: TargetWatermark(
                        uidValidity: (row["target_uidvalidity"] as Int64?).map { UInt32(truncatingIfNeeded: $0) },
                        uidNext: (row["target_uidnext"] as Int64?).map { UInt32(truncatingIfNeeded: $0) }))
            }
        }
    }

    /// Whether a source mailbox has delivered rows under another UIDVALIDITY: only then can content
    /// reconciliation (`priorCopy`) find anything, so the engine asks once per mailbox, not per message.
    public func hasDeliveriesOutside(account: String, mailbox: String, uidValidity: UInt32) throws -> Bool {
        try read { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM message WHERE account = ? AND mailbox = ? AND uid_validity != ?
                               AND state IN ('delivered', 'disposed') AND superseded_by IS NULL)
                """, arguments: [account, mailbox, Int64(uidValidity)]) ?? false
        }
    }

    /// What the content index holds of a hash (migration v3). Queries by content say
    /// `substr(sha256, 1, 16) = ? AND +sha256 = ?`: without the `+`, SQLite folds the prefix into
    /// a constant (knowing the whole hash) and scans the table instead of using the index.
    static func hashPrefix(_ sha256: String) -> String { String(sha256.prefix(16)) }
    /// The condition for rows of one content: bind `hashPrefix(h)`, then `h`.
    static let sameContent = "substr(sha256, 1, 16) = ? AND +sha256 = ?"

    /// The references of the delivered copies of this content in one target mailbox (twins'
    /// copies, which recovery must not take for a pending message's).
    public func deliveredRefs(target: String, targetMailbox: String, sha256: String) throws -> [String] {
        try read { db in
            try String.fetchAll(db.cachedStatement(sql: """
                SELECT COALESCE(target_ref, '') FROM message
                WHERE \(Self.sameContent) AND target = ? AND target_mailbox = ?
                  AND state IN ('delivered', 'disposed')
                """), arguments: [Self.hashPrefix(sha256), sha256, target, targetMailbox])
        }
    }

    /// How many copies of this content the target holds from deliveries MailFunnel made: the
    /// per-target multiset of delivered SHA-256.
    public func deliveredCopies(target: String, sha256: String) throws -> Int {
        try read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM message
                WHERE \(Self.sameContent) AND target = ? AND state IN ('delivered', 'disposed')
                """, arguments: [Self.hashPrefix(sha256), sha256, target]) ?? 0
        }
    }

    /// The highest UID handled in a source mailbox, with the UIDVALIDITY it belongs to.
    public func watermark(account: String, mailbox: String) throws -> SourceWatermark? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT uid_validity, highest_uid FROM watermark WHERE account = ? AND mailbox = ?",
                             arguments: [account, mailbox]).map {
                SourceWatermark(uidValidity: UInt32(truncatingIfNeeded: $0["uid_validity"] as Int64),
                                highestUID: UInt32(truncatingIfNeeded: $0["highest_uid"] as Int64))
            }
        }
    }

    // MARK: writing: each call is one transaction (a group commit)

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
    /// stays small: a statement of every count from 1 to 64 (a batch's remainder varies) held
    /// about 2.5 MB more in a 5,000-message import.
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
    /// so one that fails is rolled back alone. One fsync for all: the ledger's commits were half of
    /// a Maildir import's serial path. Runs on a thread of its own (see `GroupQueue`).
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
