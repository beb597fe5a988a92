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
                // Two processes creating one ledger at once would both apply the first migrations.
                try AccountLocks(ledgerPath: path).exclusive("schema") { try Self.migrator.migrate(pool) }
            }
        } catch let error as DatabaseError {
            throw FunnelError.ledger(path: path, message: error.message ?? "\(error)")
        } catch {
            throw FunnelError.ledger(path: path, message: "\(error)")
        }
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
}
