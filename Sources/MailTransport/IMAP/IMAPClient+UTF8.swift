import IMAPCore

/// UTF8=ACCEPT (RFC 6855): enabled right after login whenever the server offers it, so that the
/// mailbox is read as it is. Without it a server may serve a downgraded or generated stand-in for
/// a message whose header holds UTF-8 (RFC 6855 §7, RFC 6858), refuse to APPEND one (§4), or, as
/// UTF8=ONLY, refuse every command with `NO [CANNOT]` (§6). Once enabled, quoted strings may hold
/// UTF-8, and mailbox names are UTF-8 as they are, no longer modified UTF-7: `wireName(_:)` and
/// `mailboxName(fromWire:)` follow what was enabled.
/// - SeeAlso: RFC 6855, RFC 5161 (ENABLE)
extension IMAPClient {
    /// Whether the server enabled UTF8=ACCEPT for this session.
    public var utf8Enabled: Bool { encoder.utf8Accept }

    /// `ENABLE UTF8=ACCEPT` when the server offers UTF8=ACCEPT (or UTF8=ONLY, which implies it);
    /// valid only once authenticated and before any SELECT. Enabled when `* ENABLED` names it; a
    /// server that refuses keeps the session as it was.
    func enableUTF8() async throws {
        guard has("UTF8=ACCEPT") || has("UTF8=ONLY") else { return }
        var enabled = false
        do {
            try await run(.enable(["UTF8=ACCEPT"])) { u in
                if case let .enabled(names) = u, names.contains(where: { $0.uppercased() == "UTF8=ACCEPT" }) { enabled = true }
            }
        } catch IMAPError.commandFailed {
            return
        }
        if enabled { encoder.utf8Accept = true }
    }

    /// The name on the wire for a mailbox name: as it is once UTF8=ACCEPT is enabled, else in
    /// modified UTF-7 (`Entwürfe` → `Entw&APw-rfe`).
    public func wireName(_ name: String) -> String {
        utf8Enabled ? name : ModifiedUTF7.encode(name)
    }

    /// A mailbox name as the server sent it (LIST), decoded: as it is once UTF8=ACCEPT is enabled
    /// (an `&` is then only an `&`), else from modified UTF-7, or as sent when it is not valid.
    public func mailboxName(fromWire name: String) -> String {
        utf8Enabled ? name : (ModifiedUTF7.decode(name) ?? name)
    }
}
