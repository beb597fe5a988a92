import Foundation

/// The record of every message MailFunnel has handled: what exactly-once delivery stands on.
///
/// The engine asks only this; `SQLiteLedger` is today's store. The rule every implementation keeps:
/// each writing call is one durable commit (a returned call is on disk), applied whole or not at
/// all, and calls are applied in the order they were made. The engine writes an intent before the
/// side effect it announces and the outcome after it, so a crash between two calls leaves a row
/// that recovery can decide.
///
/// A store shared by several instances (PostgreSQL) hands each instance a `Ledger` per account it
/// holds a lease on, and every write of that view checks the lease's fence in the same transaction:
/// a stale instance's write then changes nothing and throws.
public protocol Ledger: AnyObject, Sendable {
    // MARK: reading

    /// The known state of the given messages of one source mailbox, by ident.
    func entries(account: String, mailbox: String, uidValidity: UInt32, idents: [String]) async throws -> [String: LedgerEntry]

    /// The idents of a source mailbox in one state (for the few `delivered` ones left undisposed).
    func idents(account: String, mailbox: String, uidValidity: UInt32, state: LedgerState) async throws -> Set<String>

    /// The entry of one message, or nil when the ledger has never seen it.
    func entry(_ key: SourceKey) async throws -> LedgerEntry?

    /// Every `pending` row of an account (all accounts when nil), oldest first, for recovery.
    func pending(account: String?) async throws -> [PendingRecord]

    /// Whether a source mailbox has deliveries under another UIDVALIDITY that no key has claimed:
    /// only then can content reconciliation (`priorCopies`) find anything.
    func hasDeliveriesOutside(account: String, mailbox: String, uidValidity: UInt32) async throws -> Bool

    /// The references of the delivered copies of this content in one target mailbox.
    func deliveredRefs(target: String, targetMailbox: String, sha256: String) async throws -> [String]

    /// How many copies of this content MailFunnel delivered to a target: the per-target multiset.
    func deliveredCopies(target: String, sha256: String) async throws -> Int

    /// Content reconciliation: the unclaimed deliveries of this content to `target` from the same
    /// source mailbox under other keys, oldest first, never one whose source copy was deleted (a
    /// copy deleted by a run that crashed before recording it looks just like one renumbered).
    func priorCopies(of key: SourceKey, sha256: String, target: String) async throws -> [PriorCopy]

    /// The highest UID handled in a source mailbox, with the UIDVALIDITY it belongs to.
    func watermark(account: String, mailbox: String) async throws -> SourceWatermark?

    /// Every account the ledger knows, with message counts by state and its latest runs.
    func status() async throws -> [AccountStatus]

    // MARK: writing: each call one commit

    /// A batch's intents: `pending` for the messages about to be delivered, the claims of prior
    /// copies, and the outcomes already known (skips, fetch failures).
    func commitIntents(pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome]) async throws

    /// A batch's outcomes, once the sink has made its deliveries durable.
    func record(_ outcomes: [DeliveryOutcome]) async throws

    /// The source copies of these delivered messages are disposed of.
    func markDisposed(_ keys: [SourceKey], how: Disposal) async throws

    /// Moves a source mailbox's high-water mark (never down within one UIDVALIDITY).
    func setWatermark(_ mark: SourceWatermark, account: String, mailbox: String) async throws

    /// Starts a run record for `mailfunnel status`.
    func beginRun(account: String, name: String, target: String) async throws -> RunID

    /// Closes a run record with its figures and the error that ended it, if any.
    func finishRun(_ id: RunID, summary: RunSummary, error: String?) async throws

    /// When the daemon will look at an account next, and how.
    func setSchedule(account: String, name: String, next: Date?, mode: String) async throws

    /// The time spent in ledger calls since it was opened: what the ledger costs a run.
    var busyTime: Duration { get }
}

extension Ledger {
    /// Intents alone.
    public func markPending(_ intents: [PendingIntent]) async throws {
        try await commitIntents(pending: intents, claims: [], outcomes: [])
    }
}

/// A run record's handle.
public typealias RunID = Int64
