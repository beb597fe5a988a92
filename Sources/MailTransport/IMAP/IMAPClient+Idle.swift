import IMAPCore

extension IMAPClient {
    /// IDLE until the server reports new messages in the selected mailbox (EXISTS above what it was)
    /// or `timeout` passes, then DONE. Returns whether new mail arrived. Callers re-issue IDLE well
    /// before 29 minutes, as servers may drop an idle client after 30.
    /// - SeeAlso: RFC 2177
    public func idle(timeout: Duration) async throws -> Bool {
        guard has("IDLE") else {
            throw IMAPError.commandFailed(server: endpoint.description, command: "IDLE", status: .no, code: nil,
                                          text: "the server does not offer IDLE", mailbox: selected?.name)
        }
        let before = selected?.exists ?? 0
        let tag = nextTag()
        try await send(encoder.encode(tag: tag, .idle), tag: tag, sensitive: false)
        while true {
            let event = try await nextEvent()
            if case .continuation = event { break }
            if case let .tagged(t) = event, t.tag == tag {
                throw IMAPError.commandFailed(server: endpoint.description, command: "IDLE", status: t.status, code: t.code,
                                              text: t.text, mailbox: selected?.name)
            }
            try handleUnsolicited(event)
        }
        var newMail = (selected?.exists ?? 0) > before
        let deadline = ContinuousClock.now + timeout
        while !newMail {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let event = try await nextEvent(waitingAtMost: left) else { break }
            if case let .untagged(u) = event {
                try noteUntagged(u)
                if case let .exists(n) = u, n > before { newMail = true }
            }
            if case let .unreadable(u) = event { try passOver(u, during: nil) }
        }
        try await send(encoder.done(), tag: tag, sensitive: false)
        _ = try await collect(tag: tag, name: "IDLE", mailbox: selected?.name, onUntagged: { _ in }, onFetch: { _ in })
        return newMail || (selected?.exists ?? 0) > before
    }
}
