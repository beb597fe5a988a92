import FunnelModel

/// The results of the actions, as the runner reports them.
extension TransferStateMachine {

    /// The target is ready; intents can name its watermark.
    public mutating func targetPrepared() { targetReady = true }

    /// A batch's fetch is in: its spools are in the runner's hands.
    public mutating func fetched(batch b: Int) {
        fetchesInFlight -= 1
        batches[b].fetch = .done
    }

    /// A batch's fetch failed as a whole (the source is gone): the run stops when its turn comes.
    public mutating func fetchFailed(batch b: Int) {
        fetchesInFlight -= 1
        batches[b].fetch = .failed
        for i in batches[b].range { release(i) }
    }

    /// A batch's decisions and intents are committed, one decision per message in batch order.
    public mutating func intentsCommitted(batch b: Int, _ preparations: [Preparation]) {
        precondition(preparations.count == batches[b].range.count, "one preparation per message")
        if batches[b].early { intentsInFlight -= 1 }
        batches[b].intents = .done
        for (i, p) in zip(batches[b].range, preparations) {
            status[i] = .prepared(p)
            if !p.delivers { release(i) }
        }
    }

    /// Committing a batch's intents failed: nothing of it is delivered, and the run stops.
    public mutating func intentsFailed(batch b: Int) {
        if batches[b].early { intentsInFlight -= 1 }
        batches[b].intents = .failed
    }

    /// Item `index` was delivered with this target reference.
    public mutating func delivered(_ index: Int, ref: String) {
        status[index] = .delivered(ref)
        afterDelivery(index)
    }

    /// Item `index` was staged by the sink; its outcome comes with the flush.
    public mutating func staged(_ index: Int) {
        status[index] = .staged
        afterDelivery(index)
    }

    /// Delivering item `index` failed.
    public mutating func deliveryFailed(_ index: Int, _ error: DeliveryError) {
        afterDelivery(index)
        guard error.errorClass == .sinkFailed, let b = current else {
            status[index] = .failed(error)
            return
        }
        // What this message became is unknown: it stays pending for recovery. The rest of the
        // batch was never tried; their intents are withdrawn as temporary failures.
        fatal = error
        status[index] = .unknown
        for i in cursor..<batches[b].range.upperBound where status[i].isToDeliver {
            status[i] = .notAttempted
        }
        cursor = batches[b].range.upperBound
    }

    mutating func afterDelivery(_ index: Int) {
        cursor = index + 1
        if pipeline.releaseOnDelivery { release(index) }
    }

    /// The flush said how a staged item fared (called before `flushed()`).
    public mutating func resolved(_ index: Int, _ outcome: Outcome) {
        guard status[index] == .staged else { return }
        switch outcome {
        case let .delivered(ref): status[index] = .delivered(ref)
        case let .failed(e): status[index] = e.errorClass == .sinkFailed ? .unknown : .failed(e)
        }
    }

    /// The sink made the batch durable; a staged item the flush said nothing about is unknown.
    public mutating func flushed() {
        guard let b = current else { return }
        for i in batches[b].range {
            release(i)
            if status[i] == .staged { status[i] = .unknown }
        }
        turn = .committingOutcomes
        pendingOutcomes = batches[b].range.filter {
            switch status[$0] {
            case .delivered, .failed, .notAttempted: return true
            default: return false
            }
        }
    }

    /// Flushing failed: nothing of the batch is known durable. Its intents stay pending.
    public mutating func flushFailed(_ error: DeliveryError) {
        guard let b = current else { return }
        for i in batches[b].range { release(i) }
        fatal = error
        pendingWatermark = false
        endTurn()
    }

    /// The outcome commit of the flushed batch, when there is room for it: late (in the background)
    /// when keeping with a pipeline, else now. Nil while it waits for a late commit to end, or for
    /// its own to be committed.
    mutating func outcomeCommit(_ b: Int) -> Action? {
        guard let indices = pendingOutcomes else { return nil }
        if lateFailed { return abortNow(.lateOutcomes) }
        let late = pipeline.lateOutcomes > 0 && disposal == .keep
        if late {
            guard lateInFlight < pipeline.lateOutcomes else { return nil }
            pendingOutcomes = nil
            lateInFlight += 1
            afterOutcomes(b)
            return .commitOutcomes(batch: b, indices, late: true)
        }
        guard lateInFlight == 0 else { return nil }
        pendingOutcomes = nil
        return .commitOutcomes(batch: b, indices, late: false)
    }

    /// A batch's outcomes are committed.
    public mutating func outcomesCommitted(batch b: Int, late: Bool) {
        if late {
            lateInFlight -= 1
        } else if current == b {
            afterOutcomes(b)
        }
    }

    /// A late outcome commit failed: the run stops at the next step that would wait for it.
    public mutating func outcomesFailed(batch b: Int) {
        lateInFlight -= 1
        lateFailed = true
    }

    mutating func afterOutcomes(_ b: Int) {
        let disposable = batches[b].range.filter { isDeliveredOrClaimed($0) }
        if disposal != .keep && disposeNew && !disposable.isEmpty {
            turn = .awaitingDisposal(disposable)
        } else {
            endTurn()
        }
    }

    /// The source disposed of these items (a subset of those asked, if some were already gone).
    public mutating func disposed(_ indices: [Int]) {
        if leftoverTurn != nil { leftoverTurn = .disposed(indices) } else { turn = .disposed(indices) }
    }

    /// The disposal of the items is committed.
    public mutating func disposedCommitted() {
        if leftoverTurn != nil {
            leftoverTurn = nil
        } else {
            endTurn()
        }
    }

    /// Disposal failed at the source: the messages stay `delivered` and are disposed of next run.
    public mutating func disposeFailed(_ error: DeliveryError) {
        fatal = error
        if leftoverTurn != nil { leftoverTurn = nil } else { endTurn() }
    }

    /// The unused intents are withdrawn.
    public mutating func withdrawn() {}

    /// The high-water mark moved.
    public mutating func watermarkMoved() {}

    /// Stop at the next batch boundary (a shutdown was asked for): the batch in its turn goes on to
    /// its disposal, nothing more is fetched or begun, unused early intents are withdrawn, and the
    /// page finishes as if it ended there. Unlike a failure, what is done is whole.
    public mutating func windDown() {
        windingDown = true
    }

    /// A step of the runner failed (it threw): stop, once what is in flight is in.
    public mutating func stopped() {
        if abortCause == nil { abortCause = .runner }
        aborting = true
    }

    mutating func endTurn() {
        current = nil
        turn = .committingIntents
    }
}
