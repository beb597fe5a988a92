import FunnelModel
import Logging

extension Transfer {
    /// Decides every `pending` row of this account (its source into this target): present at the target →
    /// `delivered`; absent → retryable, delivered again in this run. Each row's answer is committed
    /// as soon as it is known, so a run cut short (a link that drops) leaves the next one less to do.
    func recover(_ ledger: any Ledger) async throws {
        let pending = try await ledger.pending(account: account)
        guard !pending.isEmpty else { return }
        try await targetConnected()
        var found: Set<String> = []
        var present = 0, absent = 0
        // One line per message at -v; what recovery decided, counted, at the default level.
        defer {
            if present + absent > 0 {
                logger.notice("recovery: \(present + absent) message(s) an interrupted run left pending: \(present) found at the target (recorded as delivered), \(absent) not there (delivered again)")
            }
        }
        for record in pending {
            let refs = try await ledger.deliveredRefs(target: record.target, targetMailbox: record.targetMailbox, sha256: record.sha256)
            let taken = found.union(refs.filter { !$0.isEmpty })
            let outcome: DeliveryOutcome
            switch try await sink.locate(record, taken: taken, unknownCopies: refs.filter(\.isEmpty).count) {
            case let .present(ref):
                logger.info("recovery: \(record.key) found at the target (\(ref)); recorded as delivered")
                if !ref.isEmpty { found.insert(ref) }
                outcome = .delivered(record.key, targetRef: ref)
            case .absent:
                logger.info("recovery: \(record.key) not at the target; it will be delivered again")
                outcome = .failed(record.key, DeliveryError(.temporary, "interrupted before delivery was confirmed"))
            }
            try await ledger.record([outcome])
            if case .delivered = outcome { present += 1 } else { absent += 1 }
            try afterEffect(.ledgerRecovery)
        }
    }

    /// Waits for the early connection to the target, if one was started; its error is the sink's.
    func targetConnected() async throws {
        guard let t = targetConnecting else { return }
        targetConnecting = nil
        try await t.value
    }
}
