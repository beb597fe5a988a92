import FunnelModel
import Logging

/// What becomes of a message once its content is known: deliver it (into which folder, with which
/// flags), skip it with a reason, or claim a copy delivered before under a key that is gone. Every
/// batch's decisions go through here before its intents are committed, and are committed with
/// them. The rules run first, in order (the target's size limit, then the filters the account
/// names); then, for what is still to be delivered, content reconciliation across a UIDVALIDITY
/// change.
///
/// Used by one task at a time: the page's runner, or the task committing the next batch's intents
/// early while the runner flushes, which happens only when nothing is reconciled (`claimed` is
/// then never touched).
final class DecisionStage: @unchecked Sendable {
    private let sinkIdentity: String
    private let ledger: any Ledger
    private let logger: Logger
    private let rules: [any DeliveryRule]
    /// Prior copies claimed in this run, so two identical new messages never claim the same one.
    private var claimed: Set<SourceKey> = []

    /// - Parameter rules: the account's filters, run after the target's size limit.
    init(sink: MailSink, ledger: any Ledger, rules: [any DeliveryRule], logger: Logger) {
        sinkIdentity = sink.identity
        self.ledger = ledger
        self.logger = logger
        self.rules = [SizeLimitRule()] + rules
    }

    /// Whether a decision may name a folder other than the account's (see `DeliveryRule`).
    var choosesFolders: Bool { rules.contains { $0.choosesFolders } }

    /// The decision for each fetched message of a batch, in order.
    /// - Parameters:
    ///   - sizeLimit: the target's largest message (`MailSink.maxMessageSize`), read by the runner:
    ///     the sink is the runner's alone, even when this runs in the early intents' task.
    ///   - reconcile: look for a prior copy by content (see `decide(_:key:uidValidity:sizeLimit:reconcile:)`).
    func decide(_ results: [FetchResult], keys: [SourceKey], uidValidity: UInt32, sizeLimit: Int?, reconcile: Bool) async throws
        -> [TransferStateMachine.Preparation] {
        var out: [TransferStateMachine.Preparation] = []
        out.reserveCapacity(results.count)
        var failures: [(mailbox: String, ident: String, error: DeliveryError)] = []
        for (result, key) in zip(results, keys) {
            switch result {
            case let .failed(m, error):
                failures.append((key.mailbox, m.ident, error))
                out.append(.fetchFailed(error))
            case let .spooled(_, spooled):
                out.append(try await decide(spooled, key: key, uidValidity: uidValidity, sizeLimit: sizeLimit, reconcile: reconcile))
            }
        }
        logFailures(failures)
        return out
    }

    /// One line for the messages that failed alike (a broken connection fails the rest of a
    /// batch at once), naming each; a temporary failure is a warning, for the next run retries it.
    private func logFailures(_ failures: [(mailbox: String, ident: String, error: DeliveryError)]) {
        var order: [String] = []
        var alike: [String: [(mailbox: String, ident: String, error: DeliveryError)]] = [:]
        for f in failures {
            let said = "\(f.mailbox)\u{0}\(f.error.message)"
            if alike[said] == nil { order.append(said) }
            alike[said, default: []].append(f)
        }
        for said in order {
            guard let group = alike[said], let first = group.first else { continue }
            let who = group.count == 1 ? "\(first.mailbox) \(first.ident)"
                : "\(first.mailbox) \(group.map(\.ident).joined(separator: ", ")) (\(group.count) messages)"
            if first.error.errorClass == .permanent {
                logger.error("\(who): cannot be read at the source: \(first.error.message)")
            } else {
                logger.warning("\(who): cannot be read at the source now, tried again next run: \(first.error.message)")
            }
        }
    }

    /// Reconciles by content only across a change of key epoch (a new UIDVALIDITY): within one
    /// epoch an unlisted key means the message left the source, and an identical newcomer is a
    /// second message. Never when deleting: a copy deleted by a run that crashed before it could
    /// record `disposed` looks just like one renumbered, and claiming it would lose the newcomer.
    func decide(_ spooled: SpooledMessage, key: SourceKey, uidValidity: UInt32, sizeLimit: Int?, reconcile: Bool) async throws
        -> TransferStateMachine.Preparation {
        let context = DecisionContext(key: key, target: sinkIdentity, sizeLimit: sizeLimit)
        var delivery = Delivery.unchanged
        for rule in rules {
            switch try await rule.decide(spooled, context, proposed: delivery) {
            case let .deliver(d):
                delivery = d
            case let .skip(reason):
                logger.warning("\(key): \(reason); skipped")
                return .skip(reason: reason)
            }
        }
        guard reconcile else { return .deliver(delivery) }
        let prior = try await ledger.priorCopies(of: key, sha256: spooled.sha256, target: sinkIdentity).first { old in
            !claimed.contains(old.key) && old.key.uidValidity != uidValidity
        }
        if let prior {
            claimed.insert(prior.key)
            // One line per message at -v; the mailbox's count at the default level (`Transfer`).
            logger.info("\(key): same content as \(prior.key), already delivered (\(prior.targetRef)); not delivered again")
            return .claim(prior: prior.key, targetRef: prior.targetRef)
        }
        return .deliver(delivery)
    }
}
