import Foundation

/// A message's state in the ledger.
public enum LedgerState: String, Sendable, CaseIterable {
    /// The intent is written: delivery may or may not have happened. Recovery decides.
    case pending
    /// The target holds it durably; the source still has it.
    case delivered
    /// Delivered, and the source's copy deleted or flagged as configured.
    case disposed
    /// Could not be delivered; retried on later runs (see `LedgerEntry.isRetryable`).
    case failed
    /// Deliberately not delivered (too large, duplicate), with a reason; never retried.
    case skipped
}

/// What the ledger knows of one source message.
public struct LedgerEntry: Sendable, Equatable {
    public var state: LedgerState
    public var attempts: Int
    public var errorClass: String?
    public var disposal: String?
    /// When the entry last changed state (for a `delivered` one: when it was delivered).
    public var updatedAt: Date? = nil

    public init(state: LedgerState, attempts: Int, errorClass: String?, disposal: String?, updatedAt: Date? = nil) {
        self.state = state
        self.attempts = attempts
        self.errorClass = errorClass
        self.disposal = disposal
        self.updatedAt = updatedAt
    }

    /// Permanent failures get this many attempts in all; temporary ones are retried every run.
    public static let maxPermanentAttempts = 3

    /// Whether a run should try to deliver this message (again).
    public var isRetryable: Bool {
        guard state == .failed else { return false }
        if errorClass == DeliveryError.Class.permanent.rawValue { return attempts < Self.maxPermanentAttempts }
        return true
    }
}

/// The intent recorded before a delivery starts.
public struct PendingIntent: Sendable {
    public var key: SourceKey
    public var sha256: String
    public var size: Int
    public var messageID: String?
    public var target: String
    public var targetMailbox: String
    public var watermark: TargetWatermark

    public init(key: SourceKey, sha256: String, size: Int, messageID: String?, target: String,
                targetMailbox: String, watermark: TargetWatermark) {
        self.key = key
        self.sha256 = sha256
        self.size = size
        self.messageID = messageID
        self.target = target
        self.targetMailbox = targetMailbox
        self.watermark = watermark
    }
}

/// A `pending` row read back at recovery.
public typealias PendingRecord = PendingIntent

/// A delivery made under a key that is gone, found by content.
public struct PriorCopy: Sendable, Equatable {
    public var key: SourceKey
    public var targetRef: String
    public var messageID: String?

    public init(key: SourceKey, targetRef: String, messageID: String?) {
        self.key = key
        self.targetRef = targetRef
        self.messageID = messageID
    }
}

/// A new key taking over a prior copy's delivery (see `Ledger.priorCopy`).
public struct Claim: Sendable {
    public var key: SourceKey
    public var prior: PriorCopy
    public var target: String
    public var targetMailbox: String
    public var sha256: String
    public var size: Int

    public init(key: SourceKey, prior: PriorCopy, target: String, targetMailbox: String, sha256: String, size: Int) {
        self.key = key
        self.prior = prior
        self.target = target
        self.targetMailbox = targetMailbox
        self.sha256 = sha256
        self.size = size
    }
}

/// The outcome of delivering one message, recorded in the batch's commit.
public enum DeliveryOutcome: Sendable {
    case delivered(SourceKey, targetRef: String)
    case failed(SourceKey, DeliveryError)
    case skipped(SourceKey, reason: String, sha256: String?, size: Int?)
}

/// A source mailbox's high-water mark: every UID up to `highestUID` under `uidValidity` is settled.
public struct SourceWatermark: Sendable, Equatable {
    public var uidValidity: UInt32
    public var highestUID: UInt32

    public init(uidValidity: UInt32, highestUID: UInt32) {
        self.uidValidity = uidValidity
        self.highestUID = highestUID
    }
}

/// The figures of one run of one account, as `--json` prints them.
public struct RunSummary: Sendable, Codable, Equatable {
    public var listed = 0
    public var delivered = 0
    public var skipped = 0
    public var failed = 0
    /// Messages deleted, flagged or moved at the source this run, after their delivery was recorded.
    public var disposed = 0
    /// Of `listed`, the messages earlier runs had settled (delivered, skipped, or given up on): why
    /// a run that delivers nothing may be right. Under an IMAP high-water mark, the messages below it.
    public var earlier = 0
    /// Messages that hit a temporary failure and stay for the next run (counted in `failed` too).
    public var deferred = 0
    public var bytes = 0
    public var seconds = 0.0
    /// Of `seconds`, the time spent in the ledger (lookups and group commits with their fsyncs).
    public var ledgerSeconds = 0.0
    /// Dry runs only: how many messages a real run would deliver.
    public var wouldDeliver: Int?
    /// What ended accounts early (one line each, naming the account); nil when none did.
    public var errors: [String]?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case listed, delivered, skipped, failed, earlier, disposed, deferred, bytes, seconds
        case ledgerSeconds = "ledger_seconds"
        case wouldDeliver = "would_deliver"
        case errors
    }

    public static func + (a: RunSummary, b: RunSummary) -> RunSummary {
        var s = a
        s.listed += b.listed
        s.delivered += b.delivered
        s.skipped += b.skipped
        s.failed += b.failed
        s.earlier += b.earlier
        s.disposed += b.disposed
        s.deferred += b.deferred
        s.bytes += b.bytes
        s.seconds += b.seconds
        s.ledgerSeconds += b.ledgerSeconds
        if a.wouldDeliver != nil || b.wouldDeliver != nil { s.wouldDeliver = (a.wouldDeliver ?? 0) + (b.wouldDeliver ?? 0) }
        if a.errors != nil || b.errors != nil { s.errors = (a.errors ?? []) + (b.errors ?? []) }
        return s
    }
}

/// One account as `mailfunnel status` shows it.
public struct AccountStatus: Sendable, Codable, Equatable {
    /// The ledger's account: `source` into `target` (`LedgerAccount`).
    public var account: String
    public var name: String
    public var source: String
    public var target: String?
    public var counts: [String: Int]
    public var lastRunStarted: Date?
    public var lastRunFinished: Date?
    public var lastSuccess: Date?
    public var lastError: String?
    /// Messages known to the ledger but not yet delivered (pending or failed and to be retried).
    public var backlog: Int = 0
    /// Rows a new key took over after a UIDVALIDITY change (the same messages, renumbered): not
    /// in `counts`, which count each message once.
    public var superseded: Int = 0
    /// When the daemon will next look (nil without a daemon); `waiting` says how ("poll", "idle", "backoff").
    public var nextPoll: Date?
    public var waiting: String?

    /// The last error of a run that ended normally with some messages failed: not the run's own.
    public static func failedMessages(_ n: Int) -> String? { n > 0 ? "\(n) message(s) failed" : nil }

    public init(account: String, name: String, target: String?, counts: [String: Int]) {
        self.account = account
        self.name = name
        self.source = target.map { LedgerAccount.source(of: account, target: $0) } ?? account
        self.target = target
        self.counts = counts
    }
}
