import FunnelModel

/// What the runner is to do next, from the state the results so far left.
extension TransferStateMachine {
    /// The next action. Work that runs beside the batch in its turn (fetches ahead, early intents)
    /// comes first, so that it is under way before a long step of the turn (a flush) begins.
    public mutating func nextAction() -> Action {
        if aborting {
            return nothingInFlight ? .abort : .wait
        }
        if let a = nextFetchAhead() { return a }
        if let a = nextEarlyIntents() { return a }
        if !targetRequested {
            targetRequested = true
            return .prepareTarget
        }
        if !targetReady { return .wait }
        if let t = leftoverTurn { return leftoverAction(t) }
        if ending != .running { return endingAction() }
        guard let b = current ?? beginNextTurn() else { return endingAction() }
        return turnAction(b)
    }

    var nothingInFlight: Bool { fetchesInFlight == 0 && intentsInFlight == 0 && lateInFlight == 0 }

    /// The next batch to fetch ahead, if the pipeline allows it now.
    mutating func nextFetchAhead() -> Action? {
        guard pipeline.prefetchDepth > 0, fatal == nil, !windingDown, ending == .running, leftoverTurn == nil, !disposalWanted
        else { return nil }
        let ahead = batches.indices.filter { !batches[$0].started && batches[$0].fetch != .notStarted }
        guard ahead.count < pipeline.prefetchDepth else { return nil }
        guard let b = batches.firstIndex(where: { !$0.started && $0.fetch == .notStarted }) ?? makeBatch() else { return nil }
        if !ahead.isEmpty, heldMemory + cost(batches[b].range) > pipeline.spoolMemory { return nil }
        return startFetch(b)
    }

    /// The next batch's intents, committed early while the batch in its turn is about to flush.
    mutating func nextEarlyIntents() -> Action? {
        guard pipeline.earlyIntents, fatal == nil, !windingDown, targetReady, turn == .readyToFlush, intentsInFlight == 0,
              let c = current, c + 1 < batches.count else { return nil }
        let next = c + 1
        guard batches[next].fetch == .running || batches[next].fetch == .done, batches[next].intents == .notStarted else { return nil }
        batches[next].intents = .running
        batches[next].early = true
        intentsInFlight += 1
        return .commitIntents(batch: next, batches[next].range, early: true)
    }

    /// A disposal waits for the source to be idle: while one is due, nothing more is fetched.
    var disposalWanted: Bool {
        if case .awaitingDisposal = turn, current != nil { return true }
        return false
    }

    mutating func startFetch(_ b: Int) -> Action {
        batches[b].fetch = .running
        fetchesInFlight += 1
        for i in batches[b].range { hold(i) }
        return .fetch(batch: b, batches[b].range)
    }

    /// The batch whose turn comes next, made when it is not yet; nil when the page is done.
    mutating func beginNextTurn() -> Int? {
        guard fatal == nil, !windingDown else { return nil }
        let b: Int
        if let waiting = batches.firstIndex(where: { !$0.started }) {
            b = waiting
        } else if let made = makeBatch() {
            b = made
        } else {
            return nil
        }
        batches[b].started = true
        current = b
        turn = .committingIntents
        cursor = batches[b].range.lowerBound
        return b
    }

    mutating func turnAction(_ b: Int) -> Action {
        switch turn {
        case .committingIntents:
            switch batches[b].fetch {
            case .notStarted: return startFetch(b)
            case .running: return .wait
            case .failed: return abortNow(.fetch(batch: b))
            case .done: break
            }
            switch batches[b].intents {
            case .notStarted:
                batches[b].intents = .running
                return .commitIntents(batch: b, batches[b].range, early: false)
            case .running: return .wait
            case .failed: return abortNow(.intents(batch: b))
            case .done:
                turn = .delivering
                return turnAction(b)
            }
        case .delivering:
            while cursor < batches[b].range.upperBound {
                if status[cursor].isToDeliver {
                    return .deliver(cursor, releaseSpool: pipeline.releaseOnDelivery)
                }
                cursor += 1
            }
            turn = .readyToFlush
            return nextAction()
        case .readyToFlush:
            turn = .flushing
            return .flush(batch: b)
        case .committingOutcomes:
            return outcomeCommit(b) ?? .wait
        case let .disposed(indices):
            turn = .committingDisposed
            return .commitDisposed(indices)
        case .flushing, .disposing, .committingDisposed:
            return .wait
        case let .awaitingDisposal(indices):
            if lateFailed { return abortNow(.lateOutcomes) }
            guard nothingInFlight else { return .wait }
            turn = .disposing
            return .dispose(indices)
        }
    }

    mutating func leftoverAction(_ t: Turn) -> Action {
        switch t {
        case let .awaitingDisposal(indices):
            guard nothingInFlight else { return .wait }
            leftoverTurn = .disposing
            return .dispose(indices)
        case let .disposed(indices):
            leftoverTurn = .committingDisposed
            return .commitDisposed(indices)
        default:
            return .wait
        }
    }

    mutating func endingAction() -> Action {
        switch ending {
        case .running, .draining:
            ending = .draining
            if lateFailed { return abortNow(.lateOutcomes) }
            guard nothingInFlight else { return .wait }
            ending = .withdrawing
            let unused = batches.filter { !$0.started && $0.intents == .done }.flatMap { b in
                b.range.filter { status[$0].isToDeliver }
            }
            if !unused.isEmpty { return .withdraw(unused) }
            return endingAction()
        case .withdrawing:
            ending = .movingWatermark
            if pendingWatermark, let mark = watermark() {
                pendingWatermark = false
                let highest = messages.compactMap { m -> UInt32? in
                    if case let .uid(u) = m.locator { return u } else { return nil }
                }.max() ?? mark
                return .moveWatermark(mark, pageSettled: mark >= highest)
            }
            return endingAction()
        case .movingWatermark, .finished:
            ending = .finished
            return .finished(fatal)
        }
    }

    mutating func abortNow(_ cause: AbortCause) -> Action {
        if abortCause == nil { abortCause = cause }
        aborting = true
        return nothingInFlight ? .abort : .wait
    }


    /// The error that stopped the page early, if one did.
    public var stoppedBy: DeliveryError? { fatal }
}
