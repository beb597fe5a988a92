import FunnelModel

/// Where a batch's intents point: the target folders readied so far, each with its watermark as
/// prepared (what recovery searches from), and which one is the account's.
struct IntentTarget: Sendable {
    /// The account's folder, where a delivery that names none goes.
    var mailbox: String
    var folders: [String: TargetWatermark]
    var identity: String

    init(mailbox: String, watermark: TargetWatermark, identity: String) {
        self.mailbox = mailbox
        self.folders = [mailbox: watermark]
        self.identity = identity
    }

    func folder(of delivery: Delivery) -> String { delivery.mailbox ?? mailbox }

    /// The folders these decisions name that are not readied yet.
    func unready(_ preparations: [TransferStateMachine.Preparation]) -> [String] {
        var out: [String] = []
        for case let .deliver(d) in preparations {
            let f = folder(of: d)
            if folders[f] == nil && !out.contains(f) { out.append(f) }
        }
        return out
    }

    /// What a batch's intent commit writes: `pending` for each delivery (into the folder decided),
    /// the claims, and the outcomes known already (skips, unreadable messages). Every folder named
    /// is readied first (`unready`).
    func intents(_ results: [FetchResult], _ preparations: [TransferStateMachine.Preparation], keys: [SourceKey])
        -> (pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome]) {
        var pending: [PendingIntent] = [], claims: [Claim] = [], outcomes: [DeliveryOutcome] = []
        for (j, (result, preparation)) in zip(results, preparations).enumerated() {
            let k = keys[j]
            switch (result, preparation) {
            case let (.spooled(_, s), .deliver(d)):
                let folder = folder(of: d)
                guard let watermark = folders[folder] else { preconditionFailure("intent into \(folder), which is not readied") }
                pending.append(PendingIntent(key: k, sha256: s.sha256, size: s.size, messageID: s.messageID, target: identity,
                                             targetMailbox: folder, watermark: watermark))
            case let (.spooled(_, s), .claim(prior, ref)):
                claims.append(Claim(key: k, prior: PriorCopy(key: prior, targetRef: ref, messageID: s.messageID),
                                    target: identity, targetMailbox: mailbox, sha256: s.sha256, size: s.size))
            case let (m, .skip(reason)):
                outcomes.append(.skipped(k, reason: reason, sha256: nil, size: m.listed.size))
            case let (_, .fetchFailed(error)):
                outcomes.append(.failed(k, error))
            default:
                break
            }
        }
        return (pending, claims, outcomes)
    }
}

/// Runs what a flush left to do; the sink failing then stops the transfer, as a failed flush
/// would have: the batch's rows stay `pending`, and recovery decides.
func settled(account: String, target: String, _ work: () async throws -> Void) async throws {
    do {
        try await work()
    } catch let error as DeliveryError {
        throw TransferStopped(account: account, target: target, error: error)
    }
}
