import FunnelModel
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The ledger file's tables and how each version of them became the next.
extension SQLiteLedger {
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
        // Records per source and target (`LedgerAccount`): every row's account gains its target.
        // A failure or skip has no target of its own; it was the account's latest run's, as was a
        // watermark or a schedule. What names no target at all is left as it was: a row of an
        // account no run names is one no run will look up.
        m.registerMigration("v4: records per source and target") { db in
            try db.execute(sql: """
                CREATE TEMP TABLE latest_target AS
                    SELECT account, target FROM run WHERE id IN (SELECT MAX(id) FROM run GROUP BY account);
                UPDATE message SET account = account || '\(LedgerAccount.separator)' || COALESCE(target,
                    (SELECT l.target FROM latest_target l WHERE l.account = message.account))
                WHERE COALESCE(target, (SELECT l.target FROM latest_target l WHERE l.account = message.account)) IS NOT NULL;
                UPDATE watermark SET account = watermark.account || '\(LedgerAccount.separator)' || l.target
                    FROM latest_target l WHERE l.account = watermark.account;
                UPDATE schedule SET account = schedule.account || '\(LedgerAccount.separator)' || l.target
                    FROM latest_target l WHERE l.account = schedule.account;
                UPDATE run SET account = account || '\(LedgerAccount.separator)' || target;
                DROP TABLE latest_target;
                """)
        }
        return m
    }
}
