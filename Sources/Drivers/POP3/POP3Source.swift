import FunnelModel
import Crypto
import Foundation
import Logging
import MailMessage
import MailTransport
import NIOCore

/// A POP3 maildrop as a source. Messages are keyed by UIDL; a server without UIDL gets keys from
/// a hash of each message's header (`TOP n 0`). Deleting sends DELE for the delivered messages
/// and the QUIT at `close()` carries them out: only then are they recorded as disposed. A QUIT that
/// fails means the server deleted nothing, and the ledger still says `delivered`, so the next run
/// deletes them again.
///
/// A session that never reaches its QUIT (a link cut every few megabytes) would delete nothing,
/// run after run. So before it downloads, a session checkpoints: QUIT, to carry out the DELEs so
/// far, and log in again. It does so when those DELEs include a message an earlier run delivered,
/// or add up to `checkpointBytes`. QUIT renumbers the maildrop, so the new session's UIDL maps
/// each ident to its new number; a server without UIDL is never checkpointed.
public final class POP3Source: MailSource {
    public let url: MailURL
    let endpoint: ServerEndpoint
    /// Asked at every login (see `CredentialProvider`).
    let login: any CredentialProvider
    let logger: Logger
    private var client: POP3Client?
    /// Idents whose DELE the server accepted, carried out by the next QUIT.
    private var deleted: [String] = []
    /// Idents whose DELE a checkpoint's QUIT carried out.
    private var checkpointed: [String] = []
    /// What the DELEs since the last QUIT weigh, and whether one was of a message this run did
    /// not retrieve (delivered by an earlier run, whose QUIT never came).
    private var deletedBytes = 0
    private var deletedLeftover = false
    private var retrieved: Set<String> = []
    /// Whether idents came from UIDL, so that a new session can find their numbers.
    private var keyedByUIDL = false
    /// After the first session, each ident's number in the current one.
    private var renumbered: [String: Int]?
    private var sessions = 0

    /// DELEs that weigh this much are carried out before the next download.
    public static let checkpointBytes = 32 << 20

    public static let mailboxName = "INBOX"
    /// Computed once: it keys every ledger row.
    public let identity: String
    public var supportedDisposals: Set<Disposal> { [.keep, .delete] }
    public var supportsIncrementalListing: Bool { false }

    public init(url: MailURL, endpoint: ServerEndpoint, login: any CredentialProvider, logger: Logger) {
        self.url = url
        self.identity = POP3Driver.identity(of: url)
        self.endpoint = endpoint
        self.login = login
        self.logger = logger
    }

    func session() async throws -> POP3Client {
        if let client { return client }
        let c = try await POP3Client.open(endpoint, login: login, logger: logger)
        if let days = c.expireDays {
            logger.warning("\(identity) announces EXPIRE \(days): it deletes retrieved messages \(days == 0 ? "at once" : "after \(days) days") whatever MailFunnel's after_delivery says")
        }
        if c.has("UTF8") && !c.utf8Enabled {
            logger.warning("\(identity) offers UTF8 but refused it: messages whose header holds UTF-8 may be served as the server's notices in their place")
        }
        client = c
        sessions += 1
        if sessions > 1 && keyedByUIDL {
            guard let idents = try await uidlIdents(c) else {
                throw DeliveryError(.temporary, "\(identity) stopped answering UIDL in a new session")
            }
            renumbered = Dictionary(idents.map { ($0.1, $0.0) }, uniquingKeysWith: { a, _ in a })
        }
        return c
    }

    /// Drops a session whose connection broke: its DELEs die with it (the ledger still says
    /// `delivered`), and the next session finds each message's number anew.
    private func abandonSession() async {
        await client?.close()
        client = nil
        deleted = []
        deletedBytes = 0
        deletedLeftover = false
    }

    public func mailboxes() async throws -> [String] { [Self.mailboxName] }

    public func select(mailbox: String) async throws -> MailboxInfo {
        let (count, size) = try await session().stat()
        return MailboxInfo(mailbox: mailbox, expectedMessages: count, expectedBytes: size)
    }

    /// LIST for sizes and UIDL for keys. Two messages with the same UIDL (a broken server) both
    /// stay: the second gets `POP3UniqueID.key(rank: 2)`, in listing order.
    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let c = try await session()
        let sizes = Dictionary(try await c.list().map { ($0.number, $0.size) }, uniquingKeysWith: { a, _ in a })
        var idents: [(Int, String)]
        if let uidl = try await uidlIdents(c) {
            idents = uidl
            keyedByUIDL = true
        } else {
            logger.notice("\(identity) has no UIDL: keying messages by a hash of their headers")
            idents = try await headerIdents(c, numbers: sizes.keys.sorted())
        }
        var start = 0
        while start < idents.count {
            let chunk = idents[start..<min(idents.count, start + pageSize)]
            try await page(chunk.map { ListedMessage(ident: $0.1, size: sizes[$0.0], locator: .number($0.0)) })
            start += pageSize
        }
    }

    /// Each message's number and key by UIDL, or nil when the server has no UIDL.
    private func uidlIdents(_ c: POP3Client) async throws -> [(Int, String)]? {
        guard let uidl = try await c.uidl() else { return nil }
        var seen: [String: Int] = [:]
        return uidl.map { n, id in
            // The key is one-to-one with the id's bytes (see `POP3UniqueID.key`).
            let k = seen[id.key, default: 0] + 1
            seen[id.key] = k
            return (n, id.key(rank: k))
        }
    }

    /// The message's number in this session.
    private func number(of m: ListedMessage) -> Int? {
        if let renumbered { return renumbered[m.ident] }
        if case let .number(n) = m.locator { return n }
        return nil
    }

    /// QUIT to carry out the DELEs so far, and a new session (see the type's comment).
    private func checkpointIfDue() async throws {
        guard keyedByUIDL, let c = client, !deleted.isEmpty, deletedLeftover || deletedBytes >= Self.checkpointBytes else { return }
        client = nil
        do {
            try await c.quit()
        } catch let e as POP3Error {
            throw DeliveryError(.temporary, "QUIT to carry out \(deleted.count) deletion(s) before downloading: \(e.description)")
        }
        logger.debug("\(identity): QUIT carried out \(deleted.count) deletion(s); logging in again")
        checkpointed += deleted
        deleted = []
        deletedBytes = 0
        deletedLeftover = false
    }

    /// `hdr:<sha256 of TOP n 0>/<rank among identical headers>`.
    private func headerIdents(_ c: POP3Client, numbers: [Int]) async throws -> [(Int, String)] {
        var ranks: [String: Int] = [:]
        var out: [(Int, String)] = []
        for n in numbers {
            var h = SHA256()
            try await c.retrieve(n, topLines: 0) { b in b.withUnsafeReadableBytes { h.update(bufferPointer: $0) } }
            let digest = h.finalize().hexString
            let rank = ranks[digest, default: 0]
            ranks[digest] = rank + 1
            out.append((n, "hdr:\(digest)/\(rank)"))
        }
        return out
    }

    /// RETR pipelined (PIPELINING), so a batch costs one round trip rather than one per message.
    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        try await checkpointIfDue()
        let c = try await session()
        var results: [FetchResult?] = Array(repeating: nil, count: messages.count)
        var numbered: [(index: Int, number: Int)] = []
        for (i, m) in messages.enumerated() {
            if let n = number(of: m) {
                numbered.append((i, n))
            } else if renumbered != nil {
                results[i] = .failed(m, DeliveryError(.temporary, "gone from the maildrop since it was listed"))
            } else {
                results[i] = .failed(m, DeliveryError(.permanent, "no message number"))
            }
        }
        var spool: Spool?
        var spoolError: Error?
        var k = 0
        do {
            try await c.retrieve(numbered.map(\.number), begin: { _ in
                spoolError = nil
                do { spool = try makeSpool() } catch { spool = nil; spoolError = error }
                if let size = messages[numbered[k].index].size { spool?.reserve(size) }
            }, onBytes: { bytes in
                guard spoolError == nil, let s = spool else { return }
                do { try s.append(bytes) } catch { spoolError = error; spool = nil }
            }, end: { _, refusal in
                let m = messages[numbered[k].index]
                defer { k += 1; spool = nil }
                if let refusal {
                    results[numbered[k].index] = .failed(m, DeliveryError(.temporary, refusal.description))
                } else if let spoolError {
                    results[numbered[k].index] = .failed(m, DeliveryError(.temporary, "could not spool: \(spoolError)"))
                } else if let s = spool {
                    results[numbered[k].index] = .spooled(m, s.finish(flags: m.flags, internalDate: m.internalDate))
                    self.retrieved.insert(m.ident)
                }
            })
        } catch where keyedByUIDL && !(error is CancellationError) && results.contains(where: { $0?.isSpooled == true }) {
            // Cut mid-batch: the messages read whole go on, so a link that drops every few
            // megabytes still moves; the rest wait for a new session.
            logger.notice("\(identity): the connection broke after \(k) of \(numbered.count) message(s): \(error)")
            await abandonSession()
            return zip(messages, results).map { m, r in
                r ?? .failed(m, DeliveryError(.temporary, "the connection broke before this message was read whole: \(error)"))
            }
        }
        return zip(messages, results).map { m, r in
            r ?? .failed(m, DeliveryError(.temporary, "the server's reply ended before this message"))
        }
    }

    /// DELE now; the deletion happens at QUIT (`close()`), which reports it.
    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how == .delete, !messages.isEmpty else { return [] }
        let c = try await session()
        let numbers = messages.compactMap { m -> (Int, ListedMessage)? in number(of: m).map { ($0, m) } }
        do {
            let accepted = Set(try await c.delete(numbers.map(\.0)))
            for (n, m) in numbers where accepted.contains(n) {
                deleted.append(m.ident)
                deletedBytes += m.size ?? 0
                if !retrieved.contains(m.ident) { deletedLeftover = true }
            }
        } catch let e as POP3Error {
            throw DeliveryError(.temporary, e.description)
        }
        return []
    }

    public func close() async throws -> [String: [String]] {
        defer { deleted = []; checkpointed = [] }
        if let c = client {
            client = nil
            try await c.quit()
        } else {
            deleted = []
        }
        let done = checkpointed + deleted
        return done.isEmpty ? [:] : [Self.mailboxName: done]
    }
}
