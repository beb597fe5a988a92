import FunnelModel
/// The exactly-once protocol for one source mailbox, as a value type that takes events and returns
/// actions; `Transfer` performs the actions. It never sees a file, a socket or the database.
///
/// For each batch, in this order and never another:
///
/// 1. `fetch` the batch into spools (the runner also decides per message: deliver, claim a prior
///    copy by content, skip, or record a fetch failure);
/// 2. `commitIntents`: one transaction writes `pending` for every message to deliver (with its
///    SHA-256 and the target's watermark), and the claims, skips and fetch failures;
/// 3. `deliver` each message in turn;
/// 4. `flush`: the sink makes the deliveries durable;
/// 5. `commitOutcomes`: one transaction writes `delivered` / `failed`;
/// 6. `dispose` at the source only what step 5 committed as delivered (nothing when keeping);
/// 7. `commitDisposed`.
///
/// After the last batch the high-water mark moves (`moveWatermark`), then `finished`.
/// A crash between any two steps is recovered by the ledger: `pending` rows are looked up at the
/// target, `delivered` rows are disposed of on the next run.
public struct TransferStateMachine: Sendable {
    public struct Limits: Sendable {
        /// At most this many messages a batch (one group commit covers a batch).
        public var maxMessages: Int
        /// At most this many announced bytes a batch (bounds the spools held at once). The batch
        /// being delivered and the one fetched behind it must fit in the transfer's spool budget
        /// (8 MiB) as NIO allocates them, about 1.4 times their announced bytes (powers of two);
        /// past it small messages go to temporary files. At 4 MiB, 400 to 490 of 5,000 did.
        public var maxBytes: Int

        public init(maxMessages: Int = 256, maxBytes: Int = 2 << 20) {
            self.maxMessages = max(1, maxMessages)
            self.maxBytes = max(1, maxBytes)
        }
    }

    /// What the runner decided for a fetched message.
    public enum Preparation: Sendable, Equatable {
        /// Deliver it; the intent is written first.
        case deliver
        /// The same content was delivered under a key that is gone: take that delivery over.
        case claim(prior: SourceKey, targetRef: String)
        /// Deliberately not delivered.
        case skip(reason: String)
        /// It could not be read at the source.
        case fetchFailed(DeliveryError)
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
    }

    public enum Action: Sendable, Equatable {
        /// Dispose of these items at the source (their delivery is committed).
        case dispose([Int])
        /// Fetch these items into spools, then call `fetched(_:)`.
        case fetch(Range<Int>)
        /// One transaction: `pending` for the items prepared `.deliver`, plus claims, skips and failures.
        case commitIntents([Int])
        /// Deliver this item.
        case deliver(Int)
        /// Make every delivery so far durable at the sink.
        case flush
        /// One transaction: `delivered` or `failed` for these items.
        case commitOutcomes([Int])
        /// One transaction: `disposed` for these items.
        case commitDisposed([Int])
        /// Move the mailbox's high-water mark to this UID (IMAP sources only).
        case moveWatermark(UInt32)
        /// Done with this mailbox; the error, if any, stopped it early.
        case finished(DeliveryError?)
    }

    public let messages: [ListedMessage]
    public let disposal: Disposal
    private let disposeNew: Bool
    private let limits: Limits
    private let toDispose: [Int]
    private var status: [Status]
    private var next = 0
    private var batch: Range<Int> = 0..<0
    private var cursor = 0
    private var fatal: DeliveryError?
    private var pendingWatermark = true

    /// - Parameters:
    ///   - deliver: messages to deliver.
    ///   - leftovers: messages already delivered but not yet disposed of (after a crash).
    ///   - disposeNewDeliveries: false to dispose of leftovers only (delete after N days).
    public init(deliver: [ListedMessage], leftovers: [ListedMessage], disposal: Disposal, limits: Limits = Limits(),
                disposeNewDeliveries: Bool = true) {
        self.messages = deliver + leftovers
        self.disposal = disposal
        self.disposeNew = disposeNewDeliveries
        self.limits = limits
        self.status = Array(repeating: .listed, count: deliver.count)
            + Array(repeating: .delivered(""), count: leftovers.count)
        self.toDispose = disposal == .keep ? [] : Array(deliver.count..<(deliver.count + leftovers.count))
        self.endOfWork = deliver.count
    }

    private let endOfWork: Int

    /// The first action.
    public mutating func start() -> Action {
        if !toDispose.isEmpty { return .dispose(toDispose) }
        return nextBatch()
    }

    /// The runner fetched the batch and prepared each message, in batch order.
    public mutating func fetched(_ preparations: [Preparation]) -> Action {
        precondition(preparations.count == batch.count, "one preparation per fetched message")
        for (i, p) in zip(batch, preparations) { status[i] = .prepared(p) }
        return .commitIntents(Array(batch))
    }

    /// The intents of the batch are committed.
    public mutating func intentsCommitted() -> Action {
        cursor = batch.lowerBound
        return nextDelivery()
    }

    /// Item `index` was delivered with this target reference.
    public mutating func delivered(_ index: Int, ref: String) -> Action {
        status[index] = .delivered(ref)
        cursor = index + 1
        return nextDelivery()
    }

    /// Item `index` was staged by the sink; its outcome comes with the flush.
    public mutating func staged(_ index: Int) -> Action {
        status[index] = .staged
        cursor = index + 1
        return nextDelivery()
    }

    /// The flush said how a staged item fared (called before `flushed()`).
    public mutating func resolved(_ index: Int, _ outcome: Outcome) {
        guard status[index] == .staged else { return }
        switch outcome {
        case let .delivered(ref): status[index] = .delivered(ref)
        case let .failed(e): status[index] = e.errorClass == .sinkFailed ? .unknown : .failed(e)
        }
    }

    /// Delivering item `index` failed.
    public mutating func deliveryFailed(_ index: Int, _ error: DeliveryError) -> Action {
        cursor = index + 1
        if error.errorClass == .sinkFailed {
            // What this message became is unknown: it stays pending for recovery. The rest of the
            // batch was never tried; their intents are withdrawn as temporary failures.
            fatal = error
            for i in cursor..<batch.upperBound where status[i] == .prepared(.deliver) {
                status[i] = .notAttempted
            }
            status[index] = .unknown
            return .flush
        }
        status[index] = .failed(error)
        return nextDelivery()
    }

    /// The sink made the batch durable. A staged item the flush said nothing about is unknown.
    public mutating func flushed() -> Action {
        for i in batch where status[i] == .staged { status[i] = .unknown }
        let settled = batch.filter {
            switch status[$0] {
            case .delivered, .failed, .notAttempted: return true
            default: return false
            }
        }
        return .commitOutcomes(settled)
    }

    /// Flushing failed: nothing of the batch is known durable. The intents stay pending.
    public mutating func flushFailed(_ error: DeliveryError) -> Action {
        fatal = error
        pendingWatermark = false
        return .finished(error)
    }

    /// The outcomes of the batch are committed.
    public mutating func outcomesCommitted() -> Action {
        let disposable = batch.filter { isDeliveredOrClaimed($0) }
        if disposal != .keep && disposeNew && !disposable.isEmpty { return .dispose(disposable) }
        return afterBatch()
    }

    /// The source disposed of these items (a subset of those asked, if some were already gone).
    public mutating func disposed(_ indices: [Int]) -> Action {
        .commitDisposed(indices)
    }

    /// The disposal of the items is committed.
    public mutating func disposedCommitted() -> Action {
        afterBatch()
    }

    /// Disposal failed at the source: the messages stay `delivered` and are disposed of next run.
    public mutating func disposeFailed(_ error: DeliveryError) -> Action {
        fatal = error
        return afterBatch()
    }

    /// The high-water mark moved.
    public mutating func watermarkMoved() -> Action {
        .finished(fatal)
    }

    /// The items of the current batch.
    public var batchIndices: Range<Int> { batch }

    /// What the runner needs for item `index`.
    public func preparation(_ index: Int) -> Preparation? {
        if case let .prepared(p) = status[index] { return p }
        return nil
    }

    /// The outcome committed for item `index`, after `flushed()`.
    public func outcome(_ index: Int) -> Outcome? {
        switch status[index] {
        case let .delivered(ref): return .delivered(ref)
        case let .failed(e): return .failed(e)
        case .notAttempted:
            return .failed(DeliveryError(.temporary, "not attempted: \(fatal?.message ?? "delivery stopped")"))
        default: return nil
        }
    }

    public enum Outcome: Sendable, Equatable {
        case delivered(String)
        case failed(DeliveryError)
    }

    // MARK: private

    private func isDeliveredOrClaimed(_ index: Int) -> Bool {
        switch status[index] {
        case .delivered: return true
        case .prepared(.claim): return true
        default: return false
        }
    }

    private mutating func nextDelivery() -> Action {
        while cursor < batch.upperBound {
            if status[cursor] == .prepared(.deliver) { return .deliver(cursor) }
            cursor += 1
        }
        return .flush
    }

    private mutating func afterBatch() -> Action {
        if fatal != nil {
            return finish()
        }
        return nextBatch()
    }

    private mutating func nextBatch() -> Action {
        guard let range = batchRange(from: next) else { return finish() }
        batch = range
        next = range.upperBound
        return .fetch(batch)
    }

    /// The batch that starts at `start`, within the limits; nil when no work is left.
    private func batchRange(from start: Int) -> Range<Int>? {
        guard start < endOfWork else { return nil }
        var end = start
        var bytes = 0
        while end < endOfWork, end - start < limits.maxMessages {
            let size = messages[end].size ?? 0
            if end > start && bytes + size > limits.maxBytes { break }
            bytes += size
            end += 1
        }
        return start..<end
    }

    /// The range the next `.fetch` will ask for if the current batch ends well, so a runner can
    /// fetch it while the current batch is delivered (fetching only reads the source). Nil when
    /// no batch follows or the run is stopping.
    public var upcomingBatch: Range<Int>? {
        guard fatal == nil else { return nil }
        return batchRange(from: next)
    }

    /// The batch the machine will ask for after `range` (one of its batches), if all goes well.
    public func batch(after range: Range<Int>) -> Range<Int>? {
        guard fatal == nil else { return nil }
        return batchRange(from: range.upperBound)
    }

    private mutating func finish() -> Action {
        if pendingWatermark, let mark = watermark() {
            pendingWatermark = false
            return .moveWatermark(mark)
        }
        return .finished(fatal)
    }

    /// The highest UID below which every message is settled (delivered, claimed or skipped); a failed
    /// or untried one holds it back so an incremental fetch comes back for it.
    private func watermark() -> UInt32? {
        var highest: UInt32?
        var lowestUnsettled: UInt32?
        for (i, m) in messages.enumerated() {
            guard case let .uid(uid) = m.locator else { return nil }
            let settled: Bool
            switch status[i] {
            case .delivered, .prepared(.claim), .prepared(.skip): settled = true
            default: settled = false
            }
            if settled {
                highest = max(highest ?? 0, uid)
            } else {
                lowestUnsettled = min(lowestUnsettled ?? .max, uid)
            }
        }
        guard var mark = highest else { return nil }
        if let low = lowestUnsettled { mark = min(mark, low &- 1) }
        return mark == 0 ? nil : mark
    }
}
