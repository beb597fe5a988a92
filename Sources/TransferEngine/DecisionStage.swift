import FunnelModel
import Logging

/// What becomes of a message once its content is known: deliver it, skip it with a reason, or
/// claim a copy delivered before under a key that is gone. Every batch's decisions go through
/// here before its intents are committed, and are committed with them. Today's rules: the target's
/// size limit, then content reconciliation across a UIDVALIDITY change. Filters (Sieve, spam
/// verdicts) and cross-folder identity are further stages of this decision.
///
/// Used by one task at a time: the page's runner, or the task committing the next batch's intents
/// early while the runner flushes, which happens only when nothing is reconciled (`claimed` is
/// then never touched).
final class DecisionStage: @unchecked Sendable {
    private let sinkIdentity: String
    private let ledger: any Ledger
    private let logger: Logger
    /// Prior copies claimed in this run, so two identical new messages never claim the same one.
    private var claimed: Set<SourceKey> = []

    init(sink: MailSink, ledger: any Ledger, logger: Logger) {
        sinkIdentity = sink.identity
        self.ledger = ledger
        self.logger = logger
    }

    /// The decision for each fetched message of a batch, in order.
    /// - Parameters:
    ///   - sizeLimit: the target's largest message (`MailSink.maxMessageSize`), read by the runner:
    ///     the sink is the runner's alone, even when this runs in the early intents' task.
    ///   - reconcile: look for a prior copy by content (see `decide(_:key:uidValidity:sizeLimit:reconcile:)`).
    func decide(_ results: [FetchResult], keys: [SourceKey], uidValidity: UInt32, sizeLimit: Int?, reconcile: Bool) async throws
        -> [TransferStateMachine.Preparation] {
        var out: [TransferStateMachine.Preparation] = []
        out.reserveCapacity(results.count)
        for (result, key) in zip(results, keys) {
            switch result {
            case let .failed(m, error):
                logger.error("\(key.mailbox) \(m.ident): cannot be read at the source: \(error.message)")
                out.append(.fetchFailed(error))
            case let .spooled(_, spooled):
                out.append(try await decide(spooled, key: key, uidValidity: uidValidity, sizeLimit: sizeLimit, reconcile: reconcile))
            }
        }
        return out
    }

    /// Reconciles by content only across a change of key epoch (a new UIDVALIDITY): within one
    /// epoch an unlisted key means the message left the source, and an identical newcomer is a
    /// second message. Never when deleting: a copy deleted by a run that crashed before it could
    /// record `disposed` looks just like one renumbered, and claiming it would lose the newcomer.
    func decide(_ spooled: SpooledMessage, key: SourceKey, uidValidity: UInt32, sizeLimit: Int?, reconcile: Bool) async throws
        -> TransferStateMachine.Preparation {
        if let limit = sizeLimit, spooled.size > limit {
            logger.warning("\(key): \(spooled.size) bytes is over the target's limit of \(limit); skipped")
            return .skip(reason: "\(spooled.size) bytes is larger than \(sinkIdentity) accepts (\(limit))")
        }
        guard reconcile else { return .deliver }
        let prior = try await ledger.priorCopies(of: key, sha256: spooled.sha256, target: sinkIdentity).first { old in
            !claimed.contains(old.key) && old.key.uidValidity != uidValidity
        }
        if let prior {
            claimed.insert(prior.key)
            logger.notice("\(key): same content as \(prior.key), already delivered (\(prior.targetRef)); not delivered again")
            return .claim(prior: prior.key, targetRef: prior.targetRef)
        }
        return .deliver
    }
}
