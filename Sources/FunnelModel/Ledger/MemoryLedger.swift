import Foundation
import Synchronization

/// A ledger held in memory: for a dry run with no ledger file yet, and for engine tests. It keeps
/// every rule `SQLiteLedger` keeps (the conformance suite runs against both), and nothing survives
/// the process.
public final class MemoryLedger: Ledger {
    private struct Row {
        var id: Int
        var state: LedgerState
        var target: String?
        var targetMailbox: String?
        var sha256: String?
        var size: Int?
        var messageID: String?
        var watermark = TargetWatermark()
        var targetRef: String?
        var disposal: String?
        var errorClass: String?
        var errorText: String?
        var attempts = 0
        var reason: String?
        var supersededBy: String?
        var updatedAt: Date

        var isDelivered: Bool { state == .delivered || state == .disposed }
        var entry: LedgerEntry {
            LedgerEntry(state: state, attempts: attempts, errorClass: errorClass, disposal: disposal, updatedAt: updatedAt)
        }
    }

    private struct Run {
        var account, name, target: String
        var started: Date
        var finished: Date?
        var error: String?
        var failed = 0
    }

    private struct State {
        var rows: [SourceKey: Row] = [:]
        var nextID = 1
        var watermarks: [String: [String: SourceWatermark]] = [:]
        var runs: [Run] = []
        var schedules: [(account: String, name: String, next: Date?, mode: String)] = []
    }

    private let state = Mutex(State())
    private let clock: @Sendable () -> Date

    public init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
    }

    public var busyTime: Duration { .zero }

    // MARK: reading

    public func entries(account: String, mailbox: String, uidValidity: UInt32, idents: [String]) -> [String: LedgerEntry] {
        state.withLock { s in
            var out: [String: LedgerEntry] = [:]
            for ident in idents {
                let key = SourceKey(account: account, mailbox: mailbox, uidValidity: uidValidity, ident: ident)
                if let row = s.rows[key] { out[ident] = row.entry }
            }
            return out
        }
    }

    public func idents(account: String, mailbox: String, uidValidity: UInt32, state wanted: LedgerState) -> Set<String> {
        state.withLock { s in
            Set(s.rows.filter { k, r in
                k.account == account && k.mailbox == mailbox && k.uidValidity == uidValidity && r.state == wanted
            }.map(\.key.ident))
        }
    }

    public func entry(_ key: SourceKey) -> LedgerEntry? {
        state.withLock { $0.rows[key]?.entry }
    }

    public func pending(account: String?) -> [PendingRecord] {
        state.withLock { s in
            s.rows.filter { k, r in r.state == .pending && (account == nil || k.account == account) }
                .sorted { $0.value.id < $1.value.id }
                .map { k, r in
                    PendingIntent(key: k, sha256: r.sha256 ?? "", size: r.size ?? 0, messageID: r.messageID,
                                  target: r.target ?? "", targetMailbox: r.targetMailbox ?? "", watermark: r.watermark)
                }
        }
    }

    public func hasDeliveriesOutside(account: String, mailbox: String, uidValidity: UInt32) -> Bool {
        state.withLock { s in
            s.rows.contains { k, r in
                k.account == account && k.mailbox == mailbox && k.uidValidity != uidValidity && r.isDelivered
                    && r.supersededBy == nil
            }
        }
    }

    public func deliveredRefs(target: String, targetMailbox: String, sha256: String) -> [String] {
        state.withLock { s in
            s.rows.values.filter { $0.sha256 == sha256 && $0.target == target && $0.targetMailbox == targetMailbox && $0.isDelivered }
                .sorted { $0.id < $1.id }
                .map { $0.targetRef ?? "" }
        }
    }

    public func deliveredCopies(target: String, sha256: String) -> Int {
        state.withLock { s in s.rows.values.filter { $0.sha256 == sha256 && $0.target == target && $0.isDelivered }.count }
    }

    public func priorCopies(of key: SourceKey, sha256: String, target: String) -> [PriorCopy] {
        state.withLock { s in
            s.rows.filter { k, r in
                r.sha256 == sha256 && r.target == target && k.account == key.account && k.mailbox == key.mailbox
                    && r.isDelivered && r.supersededBy == nil && r.disposal != Disposal.delete.rawValue && k != key
            }
            .sorted { $0.value.id < $1.value.id }
            .map { k, r in PriorCopy(key: k, targetRef: r.targetRef ?? "", messageID: r.messageID) }
        }
    }

    public func watermark(account: String, mailbox: String) -> SourceWatermark? {
        state.withLock { $0.watermarks[account]?[mailbox] }
    }

    public func status() -> [AccountStatus] {
        state.withLock { s in
            var byAccount: [String: AccountStatus] = [:]
            var order: [String] = []
            func touch(_ account: String, _ change: (inout AccountStatus) -> Void) {
                if byAccount[account] == nil {
                    order.append(account)
                    byAccount[account] = AccountStatus(account: account, name: account, target: nil, counts: [:])
                }
                change(&byAccount[account]!)
            }
            for (k, r) in s.rows.sorted(by: { $0.key.account < $1.key.account }) {
                // A row a new key took over (a UIDVALIDITY change) is that message's past.
                if r.supersededBy != nil { touch(k.account) { $0.superseded += 1 }; continue }
                touch(k.account) { $0.counts[r.state.rawValue, default: 0] += 1 }
            }
            var latest: [String: Int] = [:]
            for (i, run) in s.runs.enumerated() { latest[run.account] = i }
            for i in latest.values.sorted() {
                let run = s.runs[i]
                touch(run.account) { a in
                    a.name = run.name
                    a.target = run.target
                    a.lastRunStarted = run.started
                    a.lastRunFinished = run.finished
                    a.lastError = run.error ?? AccountStatus.failedMessages(run.failed)
                    a.lastSuccess = s.runs.filter { $0.account == run.account && $0.error == nil }.compactMap(\.finished).max()
                }
            }
            for schedule in s.schedules {
                touch(schedule.account) { a in
                    a.name = schedule.name
                    a.nextPoll = schedule.next
                    a.waiting = schedule.mode
                }
            }
            return order.map { account in
                var a = byAccount[account]!
                a.backlog = (a.counts["pending"] ?? 0) + (a.counts["failed"] ?? 0)
                return a
            }
        }
    }

    // MARK: writing

    public func commitIntents(pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome]) {
        let now = clock()
        state.withLock { s in
            for intent in pending { Self.insertPending(&s, intent, now: now) }
            for claim in claims { Self.insertClaim(&s, claim, now: now) }
            for outcome in outcomes { Self.insertOutcome(&s, outcome, now: now) }
        }
    }

    public func record(_ outcomes: [DeliveryOutcome]) {
        let now = clock()
        state.withLock { s in for outcome in outcomes { Self.insertOutcome(&s, outcome, now: now) } }
    }

    public func markDisposed(_ keys: [SourceKey], how: Disposal) {
        guard how != .keep else { return }
        let now = clock()
        state.withLock { s in
            for key in keys where s.rows[key]?.isDelivered == true {
                s.rows[key]!.state = .disposed
                s.rows[key]!.disposal = how.rawValue
                s.rows[key]!.updatedAt = now
            }
        }
    }

    public func setWatermark(_ mark: SourceWatermark, account: String, mailbox: String) {
        state.withLock { s in
            var next = mark
            if let old = s.watermarks[account]?[mailbox], old.uidValidity == mark.uidValidity {
                next.highestUID = max(old.highestUID, mark.highestUID)
            }
            s.watermarks[account, default: [:]][mailbox] = next
        }
    }

    public func beginRun(account: String, name: String, target: String) -> RunID {
        let now = clock()
        return state.withLock { s in
            s.runs.append(Run(account: account, name: name, target: target, started: now))
            return RunID(s.runs.count)
        }
    }

    public func finishRun(_ id: RunID, summary: RunSummary, error: String?) {
        let now = clock()
        state.withLock { s in
            guard id >= 1, id <= s.runs.count else { return }
            s.runs[Int(id) - 1].finished = now
            s.runs[Int(id) - 1].error = error
            s.runs[Int(id) - 1].failed = summary.failed
        }
    }

    public func setSchedule(account: String, name: String, next: Date?, mode: String) {
        state.withLock { s in
            s.schedules.removeAll { $0.account == account }
            s.schedules.append((account, name, next, mode))
        }
    }

    // MARK: the rules of each write

    private static func newRow(_ s: inout State, _ state: LedgerState, now: Date) -> Row {
        defer { s.nextID += 1 }
        return Row(id: s.nextID, state: state, updatedAt: now)
    }

    /// A new intent, or a retry of a failed or pending one; a delivered, disposed or skipped
    /// message never goes back to pending.
    private static func insertPending(_ s: inout State, _ intent: PendingIntent, now: Date) {
        var row: Row
        if let old = s.rows[intent.key] {
            guard old.state == .failed || old.state == .pending else { return }
            row = old
            row.state = .pending
            row.attempts += 1
        } else {
            row = newRow(&s, .pending, now: now)
            row.attempts = 1
        }
        row.target = intent.target
        row.targetMailbox = intent.targetMailbox
        row.sha256 = intent.sha256
        row.size = intent.size
        row.messageID = intent.messageID
        row.watermark = intent.watermark
        row.updatedAt = now
        s.rows[intent.key] = row
    }

    /// The prior copy is superseded by the new key, which is delivered with the prior's reference.
    private static func insertClaim(_ s: inout State, _ claim: Claim, now: Date) {
        let k = claim.key, p = claim.prior.key
        let prior = SourceKey(account: k.account, mailbox: k.mailbox, uidValidity: p.uidValidity, ident: p.ident)
        if s.rows[prior] != nil {
            s.rows[prior]!.supersededBy = "\(k.uidValidity)/\(k.ident)"
            s.rows[prior]!.updatedAt = now
        }
        var row = s.rows[k] ?? {
            var r = newRow(&s, .delivered, now: now)
            r.targetMailbox = claim.targetMailbox
            r.size = claim.size
            r.messageID = claim.prior.messageID
            return r
        }()
        row.state = .delivered
        row.target = claim.target
        row.sha256 = claim.sha256
        row.targetRef = claim.prior.targetRef
        row.reason = "reconciled by content with \(p.uidValidity)/\(p.ident)"
        row.updatedAt = now
        s.rows[k] = row
    }

    private static func insertOutcome(_ s: inout State, _ outcome: DeliveryOutcome, now: Date) {
        switch outcome {
        case let .delivered(key, ref):
            // Only a pending intent can become delivered.
            guard s.rows[key]?.state == .pending else { return }
            s.rows[key]!.state = .delivered
            s.rows[key]!.targetRef = ref
            s.rows[key]!.errorClass = nil
            s.rows[key]!.errorText = nil
            s.rows[key]!.updatedAt = now
        case let .failed(key, error):
            var row: Row
            if let old = s.rows[key] {
                guard old.state == .pending || old.state == .failed else { return }
                row = old
                // A pending row counted its attempt when the intent was written.
                if old.state == .failed { row.attempts += 1 }
            } else {
                row = newRow(&s, .failed, now: now)
                row.attempts = 1
            }
            row.state = .failed
            row.errorClass = error.errorClass.rawValue
            row.errorText = error.message
            row.updatedAt = now
            s.rows[key] = row
        case let .skipped(key, reason, sha256, size):
            if let old = s.rows[key] {
                guard old.state == .pending || old.state == .failed else { return }
                s.rows[key]!.state = .skipped
                s.rows[key]!.reason = reason
                s.rows[key]!.updatedAt = now
            } else {
                var row = newRow(&s, .skipped, now: now)
                row.reason = reason
                row.sha256 = sha256
                row.size = size
                s.rows[key] = row
            }
        }
    }
}
