import FunnelModel
import Foundation
import IMAPCore
import Logging
import MailMessage
import MailTransport
import NIOCore

/// An IMAP account as a source: every selectable folder (or the ones asked for), keyed by
/// UIDVALIDITY and UID, fetched with `BODY.PEEK[]` (so reading marks nothing as seen), with the
/// bodies streamed into spools: one UID FETCH for a batch and the batches after it when nothing
/// else needs the session in between (a window, read a batch per call), else one per batch.
///
/// Mailbox names are given to the engine decoded (modified UTF-7 undone, unless UTF8=ACCEPT is
/// enabled and they come as UTF-8) with `/` as the hierarchy separator, whatever the server's
/// delimiter, so a target can rebuild the tree its own way.
public final class IMAPSource: MailSource {
    public let url: MailURL
    let endpoint: ServerEndpoint
    /// Asked at every login (see `CredentialProvider`).
    let login: any CredentialProvider
    let logger: Logger
    let readOnly: Bool
    private var client: IMAPClient?
    /// Decoded name (with `/`) → the name on the wire.
    private var wireNames: [String: String] = [:]
    /// The batch after the last one fetched, asked for when that one ended (see `fetch`): the
    /// next fetch of exactly these UIDs reads its response; anything else reads it first and
    /// drops it.
    private(set) var sentAhead: SentFetch?
    /// The UID FETCH of a batch and the batches after it, read a batch per `fetch` (see
    /// `MailSource.fetch`'s `horizon`).
    private(set) var window: FetchWindow?
    /// At most this many UID ranges in a window's command: a line of a few KB (RFC 7162 §4 asks
    /// clients to keep command lines under 8,192 octets).
    static let windowRanges = 300

    /// Each folder's UIDVALIDITY when the engine selected it (wire name → value): a folder
    /// selected again on a new session must have kept it, or its UIDs name other messages.
    private var validity: [String: UInt32] = [:]

    /// The URL without its path, computed once: it keys every ledger row.
    public let identity: String
    public var supportedDisposals: Set<Disposal> { [.keep, .markSeen, .delete] }
    public var supportsIncrementalListing: Bool { true }

    /// - Parameter readOnly: EXAMINE instead of SELECT (when keeping everything at the source).
    public init(url: MailURL, endpoint: ServerEndpoint, login: any CredentialProvider, readOnly: Bool, logger: Logger) {
        self.url = url
        self.identity = IMAPDriver.identity(of: url)
        self.endpoint = endpoint
        self.login = login
        self.readOnly = readOnly
        self.logger = logger
    }

    func session() async throws -> IMAPClient {
        if let client { return client }
        let c = try await IMAPClient.open(endpoint, login: login, logger: logger)
        if (c.has("UTF8=ACCEPT") || c.has("UTF8=ONLY")) && !c.utf8Enabled {
            logger.warning("\(identity) offers UTF8=ACCEPT but refused to enable it: messages whose header holds UTF-8 may be served as the server's stand-ins")
        }
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
        if let w = window {
            window = nil
            if !w.ended { _ = try await c.readFetch(w.command, pauseAfterMessage: { false }) { _ in } }
        }
        return c
    }

    public func mailboxes() async throws -> [String] {
        let c = try await idle()
        let entries = try await c.list()
        var names: [String] = []
        for e in entries where e.isSelectable {
            var decoded = c.mailboxName(fromWire: e.name)
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

    /// SELECT (or EXAMINE) a folder the engine selected before, on this session or a new one.
    private func reselect(_ c: IMAPClient, _ mailbox: String, readOnly: Bool) async throws {
        let s = try await c.select(wire(mailbox), readOnly: readOnly)
        if let v = validity[wire(mailbox)], v != s.uidValidity {
            throw FunnelError.badSource(identity, reason: "the UIDVALIDITY of \(mailbox) changed from \(v) to \(s.uidValidity) during the run; the next run starts it afresh")
        }
    }

    /// Drops a session whose connection broke, with whatever it had under way: the next call
    /// logs in again.
    private func abandonSession() async {
        sentAhead = nil
        window = nil
        await client?.close()
        client = nil
    }

    /// What fails the messages a broken connection did not bring.
    private static func cut(_ error: Error) -> DeliveryError {
        DeliveryError(.temporary, "the connection broke before it was read whole: \(error)")
    }

    private func wire(_ mailbox: String) -> String {
        wireNames[mailbox] ?? client?.wireName(mailbox) ?? ModifiedUTF7.encode(mailbox)
    }

    public func select(mailbox: String) async throws -> MailboxInfo {
        let c = try await idle()
        let s = try await c.select(wire(mailbox), readOnly: readOnly)
        validity[wire(mailbox)] = s.uidValidity
        return MailboxInfo(mailbox: mailbox, uidValidity: s.uidValidity, expectedMessages: Int(s.exists))
    }

    /// One `UID FETCH n:* (UID RFC822.SIZE FLAGS INTERNALDATE)`: sizes, flags and dates for all.
    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let c = try await idle()
        if c.selected?.name != wire(mailbox) { try await reselect(c, mailbox, readOnly: readOnly) }
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
                      horizon: @escaping @Sendable () -> [[ListedMessage]],
                      makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        let uids = messages.compactMap { $0.locator.uid }
        if let w = window, w.mailbox == wire(mailbox), !uids.isEmpty, uids.allSatisfy(w.asked.contains) {
            return try await read(messages, from: w, mailbox: mailbox, makeSpool: makeSpool)
        }
        let set = UIDSet(uids: uids)
        var ahead: SentFetch?
        if let a = sentAhead, a.set == set {
            sentAhead = nil
            ahead = a
        }
        if ahead == nil, !uids.isEmpty, case let later = horizon(), !later.isEmpty {
            // This batch and those after it in one command, as many as a short command line
            // names (UIDs come ascending: a new range wherever one is not the last plus one).
            var all = uids
            var ranges = 1
            for (u, v) in zip(uids, uids.dropFirst()) where v != u &+ 1 { ranges += 1 }
            for batch in later {
                let more = batch.compactMap { $0.locator.uid }
                var added = 0
                var last = all.last!
                for u in more {
                    if u != last &+ 1 { added += 1 }
                    last = u
                }
                guard !more.isEmpty, ranges + added <= Self.windowRanges else { break }
                ranges += added
                all += more
            }
            let c = try await idle()
            if c.selected?.name != wire(mailbox) { try await reselect(c, mailbox, readOnly: readOnly) }
            let w = FetchWindow(command: try await c.startFetch(UIDSet(uids: all), items: ["UID", "BODY.PEEK[]"]),
                                mailbox: wire(mailbox), asked: all)
            window = w
            return try await read(messages, from: w, mailbox: mailbox, makeSpool: makeSpool)
        }
        let c = try await idle()
        if c.selected?.name != wire(mailbox) {
            if let a = ahead {
                ahead = nil
                try await c.uidFetch(continuing: a) { _ in }
            }
            try await reselect(c, mailbox, readOnly: readOnly)
        }
        var spooled: [UInt32: SpooledMessage] = [:]
        var failures: [UInt32: DeliveryError] = [:]
        var spoolError: Error?
        let handler = Self.collector(makeSpool: makeSpool, spoolFailed: { spoolError = $0 }) { u, result in
            switch result {
            case let .success(s): spooled[u] = s
            case let .failure(e): failures[u] = e
            }
        }
        let next: @Sendable () -> UIDSet? = {
            guard let m = upcoming() else { return nil }
            let u = m.compactMap { $0.locator.uid }
            return u.isEmpty ? nil : UIDSet(uids: u)
        }
        var refusal: DeliveryError?
        do {
            if let ahead {
                sentAhead = try await c.uidFetch(continuing: ahead, then: next, onEvent: handler)
            } else {
                sentAhead = try await c.uidFetch(set, items: ["UID", "BODY.PEEK[]"], then: next, onEvent: handler)
            }
        } catch let e as IMAPError where Self.refusedInPart(e) {
            refusal = DeliveryError(.temporary, e.description)
        } catch where !(error is CancellationError) && !spooled.isEmpty {
            // Cut mid-batch: the messages read whole go on, so a link that drops every few
            // megabytes still moves; the rest wait for a new session.
            logger.notice("\(identity) \(mailbox): the connection broke after \(spooled.count) of \(messages.count) message(s): \(error)")
            await abandonSession()
            refusal = Self.cut(error)
        }
        if let spoolError, spooled.isEmpty, failures.isEmpty { throw spoolError }
        return Self.results(messages, mailbox: mailbox, spooled: spooled, failures: failures, refusal: refusal)
    }

    /// A NO to UID FETCH: some of the data could not be fetched (RFC 3501 §6.4.5). The messages
    /// that came stand; the others fail, for the next run (Gmail: "Some messages could not be
    /// FETCHed"). Nothing is sent ahead after it, and the session is fine.
    private static func refusedInPart(_ e: IMAPError) -> Bool {
        if case let .commandFailed(_, _, status, _, _, _) = e { return status == .no }
        return false
    }

    /// The events of a FETCH response as whole messages: each body streamed into a spool from
    /// `makeSpool`, and `onMessage` called at each message's end with its UID and its spool, or
    /// why it could not be spooled (`spoolFailed` hears every such error, with a UID or not).
    private static func collector(makeSpool: @escaping () throws -> Spool,
                                  spoolFailed: @escaping (Error) -> Void = { _ in },
                                  onMessage: @escaping (UInt32, Result<SpooledMessage, DeliveryError>) -> Void)
        -> (IMAPResponseEvent) throws -> Void {
        var spool: Spool?
        var uid: UInt32?
        var spoolError: Error?
        var noContent = false
        return { event in
            switch event {
            case .fetchBegan:
                uid = nil
                spool = nil
                spoolError = nil
                noContent = false
            case let .fetchAttribute(.uid(u)):
                uid = u
            case let .fetchBodyBegan(section, size) where section == "BODY[]":
                spool = try makeSpool()
                spool?.reserve(size)
            case let .fetchBodyNil(section) where section == "BODY[]":
                // `BODY[] NIL`: the server has no content to give, which is no empty message.
                noContent = true
            case let .fetchBodyBytes(bytes):
                do { try spool?.append(bytes) } catch {
                    spoolError = error
                    spool = nil
                    spoolFailed(error)
                }
            case .fetchEnded:
                defer { spool = nil }
                guard let u = uid else { break }
                if let s = spool {
                    onMessage(u, .success(s.finish()))
                } else if let e = spoolError {
                    onMessage(u, .failure(DeliveryError(.temporary, "could not spool: \(e)")))
                } else if noContent {
                    onMessage(u, .failure(DeliveryError(.temporary, "the server sent no content for it (BODY[] NIL)")))
                }
            default: break
            }
        }
    }

    /// Each listed message with what arrived for it: its spool, why it could not be spooled, or
    /// that the server sent nothing for it (with its `refusal` when it answered NO).
    private static func results(_ messages: [ListedMessage], mailbox: String, spooled: [UInt32: SpooledMessage],
                                failures: [UInt32: DeliveryError], refusal: DeliveryError? = nil) -> [FetchResult] {
        messages.map { m in
            guard let u = m.locator.uid else { return .failed(m, DeliveryError(.permanent, "no UID")) }
            if let s = spooled[u] {
                s.flags = m.flags
                s.internalDate = m.internalDate
                return .spooled(m, s)
            }
            return .failed(m, failures[u] ?? refusal
                                  ?? DeliveryError(.temporary, "UID \(u) is no longer in \(mailbox) (expunged by another client?)"))
        }
    }

    /// One batch of a window: what arrived for it earlier, then the response read on until every
    /// message of the batch is in (a pause: the rest stays unread, for the next batches' calls) or
    /// the command ends. A message of a later batch that comes first is kept for its call.
    private func read(_ messages: [ListedMessage], from w: FetchWindow, mailbox: String,
                      makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        var wanted = Set(messages.compactMap { $0.locator.uid })
        var spooled: [UInt32: SpooledMessage] = [:]
        var failures: [UInt32: DeliveryError] = [:]
        for u in wanted {
            if let s = w.early.removeValue(forKey: u) { spooled[u] = s }
            if let f = w.earlyFailures.removeValue(forKey: u) { failures[u] = f }
        }
        wanted.subtract(spooled.keys)
        wanted.subtract(failures.keys)
        if !wanted.isEmpty && !w.ended {
            let c = try await session()
            let handler = Self.collector(makeSpool: makeSpool) { u, result in
                // Only a message's first arrival, and only one asked for, counts.
                guard w.outstanding.remove(u) != nil else { return }
                switch (wanted.remove(u) != nil, result) {
                case let (true, .success(s)): spooled[u] = s
                case let (true, .failure(e)): failures[u] = e
                case let (false, .success(s)): w.early[u] = s
                case let (false, .failure(e)): w.earlyFailures[u] = e
                }
            }
            do {
                // With nothing more asked for, read on to the tagged OK: the command ends here.
                if try await c.readFetch(w.command, pauseAfterMessage: { wanted.isEmpty && !w.outstanding.isEmpty },
                                         onEvent: handler) {
                    w.ended = true
                }
            } catch let e as IMAPError where Self.refusedInPart(e) {
                // The command has ended: what has not come will not.
                w.ended = true
                w.refusal = DeliveryError(.temporary, e.description)
            } catch where !(error is CancellationError) && !spooled.isEmpty {
                logger.notice("\(identity) \(mailbox): the connection broke after \(spooled.count) of \(messages.count) message(s): \(error)")
                await abandonSession()
                return Self.results(messages, mailbox: mailbox, spooled: spooled, failures: failures, refusal: Self.cut(error))
            } catch {
                if window === w { window = nil }
                throw error
            }
        }
        if w.ended, w.early.isEmpty, w.earlyFailures.isEmpty, window === w { window = nil }
        return Self.results(messages, mailbox: mailbox, spooled: spooled, failures: failures, refusal: w.refusal)
    }

    /// Mark seen with `UID STORE +FLAGS.SILENT (\Seen)`; delete with `\Deleted` then `UID EXPUNGE`
    /// of exactly those UIDs (UIDPLUS). Without UIDPLUS a plain EXPUNGE runs only when no other
    /// message is marked \Deleted, so nobody else's deletion is carried out by us.
    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how != .keep, !messages.isEmpty else { return [] }
        let c = try await idle()
        if c.selected?.name != wire(mailbox) || c.selected?.readOnly == true { try await reselect(c, mailbox, readOnly: false) }
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
        if let w = window, !w.ended {
            // The transfer stopped before the window's last batch: reading the rest (up to a
            // page of messages) to log out politely is not worth it; the connection is dropped.
            window = nil
            sentAhead = nil
            await client?.close()
            client = nil
            return [:]
        }
        window = nil
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
