import Foundation
import FunnelModel

/// How one account is transferred.
public struct TransferOptions: Sendable {
    public var disposal: Disposal = .keep
    public var dryRun = false
    /// Deliver every mailbox into this one (`--into`, `folder`); nil keeps the source's names.
    public var targetMailbox: String?
    /// The account's filters, in order, after the target's size limit (see `DecisionStage`).
    public var rules: [any DeliveryRule] = []
    /// Read only these source mailboxes; nil reads all.
    public var mailboxes: [String]?
    public var limits = TransferStateMachine.Limits()
    /// With `.delete`: keep delivered messages at the source this long, then delete them (POP3's
    /// "leave on server for N days"). Nil deletes right after delivery.
    public var deleteAfter: Duration?
    /// How many messages are listed and looked up in the ledger at a time.
    public var pageSize = 5000
    /// Fetch the next batches while the current one is delivered.
    public var prefetch = true
    /// How many batches may be fetched ahead of the one being delivered.
    public var prefetchDepth = 3
    /// What the spools of this transfer may hold in memory together (as allocated: see
    /// `Spool.memoryCost`); the rest goes to temporary files. With batches of at most 2 MiB, this
    /// bounds peak memory whatever the mailbox's size, and still leaves room for the next batches.
    public var spoolMemory = 8 << 20
    /// The shared spool budget: `spoolMemory`, and headroom for spools that find more lines to
    /// normalise than foreseen and grow a little past their planned share, rather than going to a
    /// temporary file (a new inode, and a write and a read more).
    public var spoolBudgetLimit: Int { spoolMemory + spoolMemory / 8 }
    public var spool = Spool.Options()
    /// A display name for logs and `status` (the config's account name).
    public var name: String?
    /// Connect to the target while the source is connected and listed, rather than when the first
    /// batch is fetched: for `import`, which has work to do. Not for the daemon, whose passes
    /// mostly find nothing new and should not log in to the target for nothing.
    public var connectTargetEarly = false
    /// What "now" is for `deleteAfter`; tests pass another.
    public var clock: @Sendable () -> Date = { Date() }

    public init() {}
}
