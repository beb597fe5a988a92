import MailMessage

/// Where messages go: an IMAP mailbox (APPEND), an SMTP relay, a Maildir.
public protocol MailSink: AnyObject {
    /// The canonical identity of the target (its URL without secrets): the ledger's `target`.
    var identity: String { get }

    /// Whether what is delivered must have CRLF line ends (IMAP, SMTP). The spool normalises
    /// and hashes the normalised bytes, so the ledger's SHA-256 is of what was sent.
    var requiresCRLF: Bool { get }

    /// The largest message the target accepts (IMAP APPENDLIMIT, SMTP SIZE); nil when unlimited.
    var maxMessageSize: Int? { get }

    /// Opens the session (connects, logs in) before anything is asked of it, so it can go on while
    /// the source is read. Errors are those `prepare` would throw.
    func connect() async throws

    /// Readies `mailbox` (creating it when missing) and returns what recovery needs to find
    /// later deliveries there (for IMAP, UIDVALIDITY and UIDNEXT).
    func prepare(mailbox: String) async throws -> TargetWatermark

    /// Delivers one spooled message, or stages it to be sent with others at `flush()`. Throws
    /// `DeliveryError`. A `.delivered` message need not be durable before `flush()` returns.
    func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt

    /// Sends what was staged and makes every delivery so far durable; returns the outcome of each
    /// staged message. Called before the ledger records anything as delivered. A staged message
    /// missing from the result is unknown: it stays `pending` and recovery decides.
    func flush() async throws -> [SourceKey: StagedOutcome]

    /// As `flush`, but it may hand back the slow last part of making the deliveries durable (a
    /// Maildir's syncs and moves into place) as work the transfer runs off its path, while the next
    /// batch is delivered, and always before the ledger records these deliveries. The work never
    /// touches the sink's state, so it may run beside the sink's next calls.
    func flushLeavingSettlement() async throws -> (outcomes: [SourceKey: StagedOutcome], settle: Settlement?)

    /// Whether `flush` still reads messages `deliver` was given (a MULTIAPPEND or a pipelined
    /// SMTP stream sends them then). A sink that has taken a message's bytes when `deliver`
    /// returns (a Maildir has written them to tmp/) says no: the transfer then lets go of the
    /// message's spool at once, and the next batches are fetched into that memory while this one
    /// is made durable.
    var readsMessagesAtFlush: Bool { get }

    /// Says whether a message recorded as `pending` reached the target, for recovery after a crash.
    /// Matching is copy for copy: a target copy whose reference is in `taken` belongs to another
    /// ledger row (an identical twin) and cannot be this one; when `unknownCopies` other rows hold
    /// the same content without a reference, a match is ambiguous and the answer is `.absent`.
    func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence

    func close() async throws
}

extension MailSink {
    public func connect() async throws {}
    public var readsMessagesAtFlush: Bool { true }
    /// By default `flush` does it all: a sink that wraps another without passing this on stays
    /// safe (its flush is whole), only slower.
    public func flushLeavingSettlement() async throws -> (outcomes: [SourceKey: StagedOutcome], settle: Settlement?) {
        (try await flush(), nil)
    }
}

/// What is left of a flush (see `MailSink.flushLeavingSettlement`): either work that is whole, or
/// moves between two syncs that settlements of the same `scope` may share.
public struct Settlement: Sendable {
    let sync: (@Sendable () throws -> Void)?
    let move: @Sendable () throws -> Void
    let scope: String?

    /// Work that is whole: run as it is, never merged with another's.
    public init(_ work: @escaping @Sendable () throws -> Void) {
        sync = nil
        move = work
        scope = nil
    }

    /// `sync`, `move`, `sync` again, where one `sync` makes durable whatever any settlement of the
    /// same `scope` wrote or moved before it (a syncfs of one file system): settlements run
    /// together then share their two syncs.
    public init(scope: String, sync: @escaping @Sendable () throws -> Void, move: @escaping @Sendable () throws -> Void) {
        self.sync = sync
        self.move = move
        self.scope = scope
    }

    public func run() throws {
        try sync?()
        try move()
        try sync?()
    }

    /// Runs settlements together, each scope's with one sync before all their moves and one after;
    /// a settlement's own failure (a move) is its own, a sync's is every one's of its scope.
    static func runTogether(_ group: [Settlement]) -> [Result<Void, Error>] {
        var results = [Result<Void, Error>?](repeating: nil, count: group.count)
        var scopes: [String: [Int]] = [:]
        var order: [String] = []
        for (i, s) in group.enumerated() {
            guard let scope = s.scope, s.sync != nil else {
                results[i] = Result { try s.run() }
                continue
            }
            if scopes[scope] == nil { order.append(scope) }
            scopes[scope, default: []].append(i)
        }
        for scope in order {
            let members = scopes[scope]!
            let sync = group[members[0]].sync!
            do {
                try sync()
            } catch {
                for i in members { results[i] = .failure(error) }
                continue
            }
            for i in members { results[i] = Result { try group[i].move() } }
            do {
                try sync()
            } catch {
                for i in members { results[i] = .failure(error) }
            }
        }
        return results.map { $0! }
    }
}

/// What `deliver` did with a message.
public enum DeliveryReceipt: Sendable, Equatable {
    /// Delivered (durable at the latest when `flush()` returns), with the target's reference.
    case delivered(String)
    /// Staged: `flush()` sends it and says how it went.
    case staged
}

/// How a staged message fared at `flush()`.
public enum StagedOutcome: Sendable, Equatable {
    case delivered(String)
    case failed(DeliveryError)
}

/// The state of a target mailbox before a batch is delivered into it.
public struct TargetWatermark: Sendable, Equatable {
    public var uidValidity: UInt32?
    public var uidNext: UInt32?

    public init(uidValidity: UInt32? = nil, uidNext: UInt32? = nil) {
        self.uidValidity = uidValidity
        self.uidNext = uidNext
    }
}

/// What recovery learned about a pending message.
public enum Presence: Sendable, Equatable {
    /// It is there, with this target reference.
    case present(String)
    /// It is not there: deliver it again.
    case absent
}
