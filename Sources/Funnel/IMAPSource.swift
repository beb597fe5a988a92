import Foundation
import IMAPCore
import Logging
import MailMessage
import MailTransport
import NIOCore

/// An IMAP account as a source: every selectable folder (or the ones asked for), keyed by
/// UIDVALIDITY and UID, fetched with `BODY.PEEK[]` (so reading marks nothing as seen) in one UID
/// FETCH per batch, with the bodies streamed into spools.
///
/// Mailbox names are given to the engine decoded (modified UTF-7 undone) with `/` as the hierarchy
/// separator, whatever the server's delimiter, so a target can rebuild the tree its own way.
public final class IMAPSource: MailSource {
    public let url: MailURL
    let endpoint: ServerEndpoint
    let credentials: Credentials
    let logger: Logger
    let readOnly: Bool
    private var client: IMAPClient?
    /// Decoded name (with `/`) → the name on the wire.
    private var wireNames: [String: String] = [:]
    /// The batch after the last one fetched, asked for when that one ended (see `fetch`): the
    /// next fetch of exactly these UIDs reads its response; anything else reads it first and
    /// drops it.
    private(set) var sentAhead: SentFetch?

    /// The URL without its path, computed once: it keys every ledger row.
    public let identity: String
    public var supportedDisposals: Set<Disposal> { [.keep, .markSeen, .delete] }
    public var supportsIncrementalListing: Bool { true }

    /// - Parameter readOnly: EXAMINE instead of SELECT (when keeping everything at the source).
    public init(url: MailURL, endpoint: ServerEndpoint, credentials: Credentials, readOnly: Bool, logger: Logger) {
        self.url = url
        self.identity = url.accountIdentity
        self.endpoint = endpoint
        self.credentials = credentials
        self.readOnly = readOnly
        self.logger = logger
    }

    func session() async throws -> IMAPClient {
        if let client { return client }
        let c = try await IMAPClient.open(endpoint, credentials: credentials, logger: logger)
        client = c
        return c
    }

    /// The session with no response left to read: a batch asked for ahead and not fetched after
    /// all (the transfer stopped, or went on to dispose of what it delivered) is read and dropped.
    private func idle() async throws -> IMAPClient {
        let c = try await session()
        if let ahead = sentAhead {
            sentAhead = nil
            try await c.uidFetch(continuing: ahead) { _ in }
        }
        return c
    }

    public func mailboxes() async throws -> [String] {
        let c = try await idle()
        let entries = try await c.list()
        var names: [String] = []
        for e in entries where e.isSelectable {
            var decoded = ModifiedUTF7.decode(e.name) ?? e.name
            if let d = e.delimiter, d != "/" { decoded = decoded.replacingOccurrences(of: String(d), with: "/") }
            if decoded.uppercased() == "INBOX" { decoded = "INBOX" }
            wireNames[decoded] = e.name
            names.append(decoded)
        }
        names.sort { a, b in a == "INBOX" ? b != "INBOX" : (b == "INBOX" ? false : a < b) }
        if !url.path.isEmpty {
            // A folder in the source URL means that folder only.
            let wanted = url.path.uppercased() == "INBOX" ? "INBOX" : url.path
            guard names.contains(wanted) else {
                throw FunnelError.badSource(identity, reason: "no folder named \(wanted) (it has: \(names.joined(separator: ", ")))")
            }
            return [wanted]
        }
        return names
    }

    private func wire(_ mailbox: String) -> String {
        wireNames[mailbox] ?? ModifiedUTF7.encode(mailbox)
    }

    public func select(mailbox: String) async throws -> MailboxInfo {
        let c = try await idle()
        let s = try await c.select(wire(mailbox), readOnly: readOnly)
        return MailboxInfo(mailbox: mailbox, uidValidity: s.uidValidity, expectedMessages: Int(s.exists))
    }

    /// One `UID FETCH n:* (UID RFC822.SIZE FLAGS INTERNALDATE)`: sizes, flags and dates for all.
    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let c = try await idle()
        if c.selected?.name != wire(mailbox) { _ = try await c.select(wire(mailbox), readOnly: readOnly) }
        guard (c.selected?.exists ?? 0) > 0 else { return }
        let from = (after ?? 0) &+ 1
        var all: [ListedMessage] = []
        var uid: UInt32?, size: Int?, flags = MessageFlags(), date: Date?
        try await c.uidFetch(UIDSet([from...UInt32.max]), items: ["UID", "RFC822.SIZE", "FLAGS", "INTERNALDATE"]) { event in
            switch event {
            case .fetchBegan:
                uid = nil; size = nil; flags = MessageFlags(); date = nil
            case let .fetchAttribute(a):
                switch a {
                case let .uid(u): uid = u
                case let .rfc822Size(s): size = s
                case let .flags(f): flags = MessageFlags(imapFlags: f)
                case let .internalDate(d): date = InternalDate.parse(d)
                default: break
                }
            case .fetchEnded:
                // `n:*` always returns the highest message, even below n: skip what is not above.
                if let u = uid, u >= from {
                    all.append(ListedMessage(ident: String(u), size: size, flags: flags, internalDate: date, locator: .uid(u)))
                }
            default: break
            }
        }
        all.sort { ($0.locator.uid ?? 0) < ($1.locator.uid ?? 0) }
        var start = 0
        while start < all.count {
            let end = min(all.count, start + pageSize)
            try await page(Array(all[start..<end]))
            start = end
        }
    }

    /// One `UID FETCH set (UID BODY.PEEK[])` for the batch, bodies streamed into spools.
    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        try await fetch(messages, mailbox: mailbox, upcoming: { nil }, makeSpool: makeSpool)
    }

    /// As above; the UID FETCH of the `upcoming` batch is written the moment this one's ends (see
    /// `IMAPClient.uidFetch(_:items:then:onEvent:)`), and the next call, for that batch, reads it.
    public func fetch(_ messages: [ListedMessage], mailbox: String, upcoming: @escaping @Sendable () -> [ListedMessage]?,
                      makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        let uids = messages.compactMap { $0.locator.uid }
        let set = UIDSet(uids: uids)
        var ahead: SentFetch?
        if let a = sentAhead, a.set == set {
            sentAhead = nil
            ahead = a
        }
        let c = try await idle()
        if c.selected?.name != wire(mailbox) {
            if let a = ahead {
                ahead = nil
                try await c.uidFetch(continuing: a) { _ in }
            }
            _ = try await c.select(wire(mailbox), readOnly: readOnly)
        }
        var spooled: [UInt32: SpooledMessage] = [:]
        var failures: [UInt32: DeliveryError] = [:]
        var spool: Spool?
        var uid: UInt32?
        var spoolError: Error?
        let handler: (IMAPResponseEvent) throws -> Void = { event in
            switch event {
            case .fetchBegan:
                uid = nil
                spool = nil
            case let .fetchAttribute(.uid(u)):
                uid = u
            case let .fetchBodyBegan(section, size) where section == "BODY[]":
                spool = try makeSpool()
                spool?.reserve(size)
            case let .fetchBodyBytes(bytes):
                do { try spool?.append(bytes) } catch { spoolError = error; spool = nil }
            case .fetchEnded:
                if let u = uid, let s = spool {
                    spooled[u] = s.finish()
                } else if let u = uid, let e = spoolError {
                    failures[u] = DeliveryError(.temporary, "could not spool: \(e)")
                }
                spool = nil
            default: break
            }
        }
        let next: @Sendable () -> UIDSet? = {
            guard let m = upcoming() else { return nil }
            let u = m.compactMap { $0.locator.uid }
            return u.isEmpty ? nil : UIDSet(uids: u)
        }
        if let ahead {
            sentAhead = try await c.uidFetch(continuing: ahead, then: next, onEvent: handler)
        } else {
            sentAhead = try await c.uidFetch(set, items: ["UID", "BODY.PEEK[]"], then: next, onEvent: handler)
        }
        if let spoolError, spooled.isEmpty, failures.isEmpty { throw spoolError }
        return messages.map { m in
            guard let u = m.locator.uid else { return .failed(m, DeliveryError(.permanent, "no UID")) }
            if let s = spooled[u] {
                s.flags = m.flags
                s.internalDate = m.internalDate
                return .spooled(m, s)
            }
            return .failed(m, failures[u] ?? DeliveryError(.temporary, "UID \(u) is no longer in \(mailbox) (expunged by another client?)"))
        }
    }

    /// Mark seen with `UID STORE +FLAGS.SILENT (\Seen)`; delete with `\Deleted` then `UID EXPUNGE`
    /// of exactly those UIDs (UIDPLUS). Without UIDPLUS a plain EXPUNGE runs only when no other
    /// message is marked \Deleted, so nobody else's deletion is carried out by us.
    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how != .keep, !messages.isEmpty else { return [] }
        let c = try await idle()
        if c.selected?.name != wire(mailbox) || c.selected?.readOnly == true { _ = try await c.select(wire(mailbox), readOnly: false) }
        let set = UIDSet(uids: messages.compactMap { $0.locator.uid })
        do {
            switch how {
            case .keep: return []
            case .markSeen:
                try await c.uidStore(set, "+FLAGS.SILENT", flags: ["\\Seen"])
            case .delete:
                try await c.uidStore(set, "+FLAGS.SILENT", flags: ["\\Deleted"])
                if c.has("UIDPLUS") {
                    try await c.uidExpunge(set)
                } else {
                    let flagged = try await c.uidSearch("DELETED")
                    if flagged.allSatisfy({ set.contains($0) }) {
                        try await c.expunge()
                    } else {
                        logger.warning("\(identity) \(mailbox): other messages are marked \\Deleted and the server has no UIDPLUS; ours stay marked, not expunged")
                        return []
                    }
                }
            }
        } catch let e as IMAPError {
            throw DeliveryError(.temporary, e.description)
        }
        return messages.map(\.ident)
    }

    public func close() async throws -> [String: [String]] {
        if client != nil, sentAhead != nil { _ = try? await idle() }
        await client?.logout()
        client = nil
        return [:]
    }
}

extension ListedMessage.Locator {
    var uid: UInt32? {
        if case let .uid(u) = self { return u }
        return nil
    }
}

extension MessageFlags {
    /// From an IMAP FLAGS list; `\Recent` and other system flags we do not carry are dropped.
    public init(imapFlags: [String]) {
        self.init()
        for f in imapFlags {
            switch f.lowercased() {
            case "\\seen": seen = true
            case "\\answered": answered = true
            case "\\flagged": flagged = true
            case "\\deleted": deleted = true
            case "\\draft": draft = true
            default:
                if !f.hasPrefix("\\") && !keywords.contains(f) { keywords.append(f) }
            }
        }
    }
}
