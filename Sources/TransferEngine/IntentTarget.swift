import FunnelModel

/// Where a batch's intents point: the target mailbox and its watermark as prepared.
struct IntentTarget: Sendable {
    var mailbox: String
    var watermark: TargetWatermark
    var identity: String

    /// What a batch's intent commit writes: `pending` for each delivery, the claims, and the
    /// outcomes known already (skips, unreadable messages).
    func intents(_ results: [FetchResult], _ preparations: [TransferStateMachine.Preparation], keys: [SourceKey])
        -> (pending: [PendingIntent], claims: [Claim], outcomes: [DeliveryOutcome]) {
        var pending: [PendingIntent] = [], claims: [Claim] = [], outcomes: [DeliveryOutcome] = []
        for (j, (result, preparation)) in zip(results, preparations).enumerated() {
            let k = keys[j]
            switch (result, preparation) {
            case let (.spooled(_, s), .deliver):
                pending.append(PendingIntent(key: k, sha256: s.sha256, size: s.size, messageID: s.messageID, target: identity,
                                             targetMailbox: mailbox, watermark: watermark))
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
