import FunnelModel

/// The exactly-once protocol for one page of one source mailbox, with everything the runner
/// overlaps: batches fetched ahead, the next batch's intents committed while one flushes, outcome
/// commits left in flight behind the deliveries, the withdrawal of intents a stop left unused, and
/// the high-water mark. A value type that takes events and returns actions; `BatchRunner` performs
/// the actions and reports their results. It never sees a file, a socket or the database.
///
/// For each message, in this order and never another:
///
/// 1. `fetch` its batch into spools;
/// 2. `commitIntents`: the batch's decisions, and `pending` for every message to deliver (with its
///    SHA-256 and the target's watermark), in one commit;
/// 3. `deliver` it;
/// 4. `flush`: the sink makes the batch's deliveries durable;
/// 5. `commitOutcomes`: `delivered` / `failed`, in one commit;
/// 6. `dispose` of it at the source, only once step 5 is committed (nothing when keeping);
/// 7. `commitDisposed`.
///
/// Then the high-water mark moves, over what is settled only. A crash between any two steps is
/// recovered from the ledger: `pending` rows are looked up at the target, `delivered` rows are
/// disposed of on the next run, and intents committed for a batch that never started are withdrawn
/// (or found absent by recovery).
///
/// `nextAction()` is asked until it says `.finished` or `.abort`; `.wait` means: wait for the next
/// result of an action in flight (a fetch, an early intent commit, a late outcome commit).
public struct TransferStateMachine: Sendable {
    public struct Limits: Sendable {
        /// At most this many messages a batch (one group commit covers a batch).
        public var maxMessages: Int
        /// At most this many announced bytes a batch (bounds the spools held at once).
        public var maxBytes: Int

        public init(maxMessages: Int = 256, maxBytes: Int = 2 << 20) {
            self.maxMessages = max(1, maxMessages)
            self.maxBytes = max(1, maxBytes)
        }
    }

    /// What the runner may overlap. Each choice keeps every message's order of steps.
    public struct Pipeline: Sendable {
        /// How many batches may be fetched ahead of the one being delivered (0: none).
        public var prefetchDepth: Int
        /// What the spools of the batches in hand may hold in memory (see `memoryCost`): a further
        /// batch is fetched ahead only if it fits, so fetching ahead never pushes spools onto disk.
        public var spoolMemory: Int
        /// Commit the next batch's intents while this one flushes. Not when reconciling by content,
        /// whose claims must be decided one batch after the other.
        public var earlyIntents: Bool
        /// How many batches' outcome commits may stay in flight while the next ones are delivered
        /// (0: each is committed before the next batch starts). Only when keeping: then nothing but
        /// the high-water mark waits for them.
        public var lateOutcomes: Int
        /// The sink has taken a message's bytes when `deliver` returns: its spool goes at once.
        public var releaseOnDelivery: Bool

        public init(prefetchDepth: Int, spoolMemory: Int, earlyIntents: Bool, lateOutcomes: Int, releaseOnDelivery: Bool) {
            self.prefetchDepth = max(0, prefetchDepth)
            self.spoolMemory = spoolMemory
            self.earlyIntents = earlyIntents
            self.lateOutcomes = max(0, lateOutcomes)
            self.releaseOnDelivery = releaseOnDelivery
        }

        /// One step at a time: what the protocol alone asks.
        public static let sequential = Pipeline(prefetchDepth: 0, spoolMemory: .max, earlyIntents: false, lateOutcomes: 0,
                                                releaseOnDelivery: false)
    }

    /// What the decision stage made of a fetched message.
    public enum Preparation: Sendable, Equatable {
        /// Deliver it thus; the intent is written first.
        case deliver(Delivery)
        /// The same content was delivered under a key that is gone: take that delivery over.
        case claim(prior: SourceKey, targetRef: String)
        /// Deliberately not delivered.
        case skip(reason: String)
        /// It could not be read at the source.
        case fetchFailed(DeliveryError)

        /// Whether the message is to be handed to the sink.
        public var delivers: Bool {
            if case .deliver = self { return true }
            return false
        }
    }

    public enum Outcome: Sendable, Equatable {
        case delivered(String)
        case failed(DeliveryError)
    }

    public enum Action: Sendable, Equatable {
        /// Start fetching this batch into spools (after the fetches started before it), then
        /// report `fetched` or `fetchFailed`.
        case fetch(batch: Int, Range<Int>)
        /// Ready the target mailbox (connect, log in, create, select) for the intents' watermark.
        case prepareTarget
        /// Decide each message of the batch and commit the decisions with its intents; `early`:
        /// while the batch before is flushed, in the background (the batch's fetch may still run).
        case commitIntents(batch: Int, Range<Int>, early: Bool)
        /// Deliver this message; `releaseSpool`: its spool is done with once `deliver` returns.
        case deliver(Int, releaseSpool: Bool)
        /// Make every delivery of the batch durable at the sink.
        case flush(batch: Int)
        /// One commit: `delivered` or `failed` for these messages (see `outcome(_:)`); `late`: in
        /// the background, after the commits before it, while the next batches go on.
        case commitOutcomes(batch: Int, [Int], late: Bool)
        /// Dispose of these messages at the source (their delivery is committed).
        case dispose([Int])
        /// One commit: `disposed` for these messages.
        case commitDisposed([Int])
        /// One commit: these intents were never attempted (temporary failures, retried next run).
        case withdraw([Int])
        /// The high-water mark may move to this UID; `pageSettled`: every message of the page is
        /// settled, so a later page's mark may move too.
        case moveWatermark(UInt32, pageSettled: Bool)
        /// Wait for a result of something in flight.
        case wait
        /// Stop: an action failed. Nothing is in flight any more.
        case abort
        /// Done with this page; the error, if any, stopped it early.
        case finished(DeliveryError?)
    }

    enum Status: Sendable, Equatable {
        case listed
        case prepared(Preparation)
        case delivered(String)
        case failed(DeliveryError)
        /// Handed to the sink to be sent at flush; its outcome comes with the flush.
        case staged
        /// The sink failed during this delivery: whether it arrived is unknown, so it stays `pending`.
        case unknown
        /// The sink failed before this message's turn: certainly not delivered.
        case notAttempted

        /// Decided, and the decision is to hand it to the sink; not handed yet.
        var isToDeliver: Bool {
            if case let .prepared(p) = self { return p.delivers }
            return false
        }
    }

    enum Step: Sendable, Equatable { case notStarted, running, done, failed }

    struct Batch: Sendable {
        let range: Range<Int>
        var fetch = Step.notStarted
        var intents = Step.notStarted
        /// Its turn came (it was, or is, the batch being delivered).
        var started = false
        /// Its intents were committed early, in the background.
        var early = false
    }

    /// Where the batch in its turn is.
    enum Turn: Sendable, Equatable {
        case committingIntents
        case delivering
        case readyToFlush
        case flushing
        case committingOutcomes
        case awaitingDisposal([Int])
        case disposing
        case disposed([Int])
        case committingDisposed
    }

    enum Ending: Sendable, Equatable { case running, draining, withdrawing, movingWatermark, finished }

    public let messages: [ListedMessage]
    public let disposal: Disposal
    let pipeline: Pipeline
    let limits: Limits
    let disposeNew: Bool
    let endOfWork: Int
    /// What each message's spool will hold in memory (`Spool.memoryCost`), for the pipeline's budget.
    let memoryCost: [Int]
    var status: [Status]
    /// Whose spool is held now (from its fetch until its delivery or its batch's flush), and what
    /// they hold together.
    var held: [Bool]
    var heldMemory = 0
    var batches: [Batch] = []
    var nextStart = 0
    var current: Int?
    var turn: Turn = .committingIntents
    var cursor = 0
    var leftoverTurn: Turn?
    /// The outcomes the flushed batch is to commit.
    var pendingOutcomes: [Int]?
    var targetReady = false
    var targetRequested = false
    var fetchesInFlight = 0
    var intentsInFlight = 0
    var lateInFlight = 0
    var lateFailed = false
    var aborting = false
    var fatal: DeliveryError?
    /// Asked to stop at the next batch boundary (`windDown`).
    var windingDown = false
    var pendingWatermark = true
    var ending = Ending.running

    /// - Parameters:
    ///   - deliver: messages to deliver.
    ///   - leftovers: messages already delivered but not yet disposed of (after a crash).
    ///   - disposeNewDeliveries: false to dispose of leftovers only (delete after N days).
    ///   - memoryCost: what each message's spool will hold in memory, leftovers excluded.
    public init(deliver: [ListedMessage], leftovers: [ListedMessage], disposal: Disposal, limits: Limits = Limits(),
                pipeline: Pipeline = .sequential, memoryCost: [Int]? = nil, disposeNewDeliveries: Bool = true) {
        self.messages = deliver + leftovers
        self.disposal = disposal
        self.pipeline = pipeline
        self.limits = limits
        self.disposeNew = disposeNewDeliveries
        self.endOfWork = deliver.count
        self.memoryCost = (memoryCost ?? deliver.map { $0.size ?? 0 }) + Array(repeating: 0, count: leftovers.count)
        self.status = Array(repeating: .listed, count: deliver.count) + Array(repeating: .delivered(""), count: leftovers.count)
        self.held = Array(repeating: false, count: deliver.count + leftovers.count)
        let toDispose = disposal == .keep ? [] : Array(deliver.count..<(deliver.count + leftovers.count))
        self.leftoverTurn = toDispose.isEmpty ? nil : .awaitingDisposal(toDispose)
    }

    /// Why the page is being stopped, once it is.
    public enum AbortCause: Sendable, Hashable {
        /// The fetch of this batch failed when its turn came.
        case fetch(batch: Int)
        /// The early intent commit of this batch failed.
        case intents(batch: Int)
        /// A late outcome commit failed.
        case lateOutcomes
        /// A step the runner performed threw.
        case runner
    }

    public internal(set) var abortCause: AbortCause?
}
