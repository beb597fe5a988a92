import IMAPCore

/// What SELECT or EXAMINE told about a mailbox.
public struct SelectedMailbox: Sendable, Equatable {
    public var name: String
    public var uidValidity: UInt32
    public var uidNext: UInt32?
    public var exists: UInt32
    public var permanentFlags: [String]
    public var readOnly: Bool
    public var highestModSeq: UInt64?
}

/// Mailboxes and their messages: LIST, CREATE, SELECT, SEARCH, STORE, EXPUNGE, NOOP and ID.
extension IMAPClient {
    /// Every mailbox, with SPECIAL-USE attributes when the server supports them.
    public func list() async throws -> [ListEntry] {
        var entries: [ListEntry] = []
        try await run(.list(reference: "", pattern: "*", returnSpecialUse: has("SPECIAL-USE") && has("LIST-EXTENDED"))) { u in
            if case let .list(e) = u { entries.append(e) }
        }
        return entries
    }

    public func create(_ mailbox: String) async throws {
        try await run(.create(mailbox), mailbox: mailbox)
    }

    /// SELECT (or EXAMINE when `readOnly`).
    public func select(_ mailbox: String, readOnly: Bool = false) async throws -> SelectedMailbox {
        var result = SelectedMailbox(name: mailbox, uidValidity: 0, uidNext: nil, exists: 0, permanentFlags: [],
                                     readOnly: readOnly, highestModSeq: nil)
        let done = try await run(readOnly ? .examine(mailbox) : .select(mailbox), mailbox: mailbox) { u in
            switch u {
            case let .exists(n): result.exists = n
            case let .status(.ok, code?, _):
                switch code {
                case let .uidValidity(v): result.uidValidity = v
                case let .uidNext(n): result.uidNext = n
                case let .permanentFlags(f): result.permanentFlags = f
                case let .highestModSeq(m): result.highestModSeq = m
                default: break
                }
            default: break
            }
        }
        if done.code == .readOnly { result.readOnly = true }
        guard result.uidValidity != 0 else {
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "SELECT \(mailbox) gave no UIDVALIDITY")
        }
        selected = result
        lastExists = result.exists
        return result
    }

    /// `UID SEARCH criteria`, as a list of UIDs (ESEARCH results are expanded). A result cannot
    /// name more messages than the mailbox holds: a set that does (`ALL 1:4294967294`) is refused
    /// before it is expanded, so a server cannot make us spend memory without bound.
    public func uidSearch(_ criteria: String) async throws -> [UInt32] {
        var uids: [UInt32] = []
        var refused: String?
        try await run(.uidSearch(criteria), mailbox: selected?.name) { u in
            if case let .search(found) = u { uids += found }
            if case let .esearch(_, _, items) = u, let all = items["ALL"] {
                let most = UInt64(self.selected?.exists ?? self.lastExists ?? 0)
                guard let set = UIDSet(all) else { refused = "a search result '\(all.prefix(60))'"; return }
                if set.count <= most {
                    uids += set.uids
                } else {
                    refused = "a search result of \(set.count) UIDs in a mailbox of \(most) messages"
                }
            }
        }
        // Refused once the command has ended, so the session stays in step.
        if let refused { throw IMAPError.protocolViolation(server: endpoint.description, detail: refused) }
        return uids
    }

    public func uidStore(_ set: UIDSet, _ operation: String, flags: [String]) async throws {
        try await run(.uidStore(set, operation: operation, flags: flags), mailbox: selected?.name)
    }

    public func uidExpunge(_ set: UIDSet) async throws {
        try await run(.uidExpunge(set), mailbox: selected?.name)
    }

    public func expunge() async throws {
        try await run(.expunge, mailbox: selected?.name)
    }

    public func noop() async throws {
        try await run(.noop)
    }

    public func id(_ fields: [(String, String)]) async throws {
        guard has("ID") else { return }
        try await run(.id(fields))
    }
}
