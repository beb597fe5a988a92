import FunnelModel

/// What the runner reads of the machine, and the batching and high-water mark rules.
extension TransferStateMachine {
    /// The messages of batch `b`, one the machine asked for.
    public func range(ofBatch b: Int) -> Range<Int> { batches[b].range }

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

    /// Every batch of the page as the machine will ask for them if all goes well, for a source
    /// that can ask its server for several at once (`MailSource.fetch`'s `horizon`).
    public var plannedBatches: [Range<Int>] {
        var all: [Range<Int>] = batches.map(\.range)
        var start = all.last?.upperBound ?? nextStart
        while let r = batchRange(from: start) {
            all.append(r)
            start = r.upperBound
        }
        return all
    }

    // MARK: private

    func isDeliveredOrClaimed(_ index: Int) -> Bool {
        switch status[index] {
        case .delivered: return true
        case .prepared(.claim): return true
        default: return false
        }
    }

    mutating func hold(_ i: Int) {
        guard !held[i] else { return }
        held[i] = true
        heldMemory += memoryCost[i]
    }

    mutating func release(_ i: Int) {
        guard held[i] else { return }
        held[i] = false
        heldMemory -= memoryCost[i]
    }

    func cost(_ range: Range<Int>) -> Int {
        range.reduce(0) { $0 + memoryCost[$1] }
    }

    mutating func makeBatch() -> Int? {
        guard fatal == nil, let range = batchRange(from: nextStart) else { return nil }
        nextStart = range.upperBound
        batches.append(Batch(range: range))
        return batches.count - 1
    }

    /// The batch that starts at `start`, within the limits; nil when no work is left.
    func batchRange(from start: Int) -> Range<Int>? {
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

    /// The highest UID below which every message is settled (delivered, claimed or skipped); a failed
    /// or untried one holds it back so an incremental fetch comes back for it.
    func watermark() -> UInt32? {
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
