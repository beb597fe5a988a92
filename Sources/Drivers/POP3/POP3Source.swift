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
public final class POP3Source: MailSource {
    public let url: MailURL
    let endpoint: ServerEndpoint
    /// Asked at every login (see `CredentialProvider`).
    let login: any CredentialProvider
    let logger: Logger
    private var client: POP3Client?
    /// Idents whose DELE the server accepted, carried out by QUIT.
    private var deleted: [String] = []

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
        return c
    }

    public func mailboxes() async throws -> [String] { [Self.mailboxName] }

    public func select(mailbox: String) async throws -> MailboxInfo {
        let (count, size) = try await session().stat()
        return MailboxInfo(mailbox: mailbox, expectedMessages: count, expectedBytes: size)
    }

    /// LIST for sizes and UIDL for keys. Two messages with the same UIDL (a broken server) both
    /// stay: the second is `uid#2`, in listing order.
    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let c = try await session()
        let sizes = Dictionary(try await c.list().map { ($0.number, $0.size) }, uniquingKeysWith: { a, _ in a })
        var idents: [(Int, String)]
        if let uidl = try await c.uidl() {
            var seen: [String: Int] = [:]
            idents = uidl.map { n, id in
                // The key is one-to-one with the id's bytes (see `POP3UniqueID.key`).
                let uid = id.key
                let k = seen[uid, default: 0] + 1
                seen[uid] = k
                return (n, k == 1 ? uid : "\(uid)#\(k)")
            }
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
        let c = try await session()
        var results: [FetchResult?] = Array(repeating: nil, count: messages.count)
        var numbered: [(index: Int, number: Int)] = []
        for (i, m) in messages.enumerated() {
            if case let .number(n) = m.locator {
                numbered.append((i, n))
            } else {
                results[i] = .failed(m, DeliveryError(.permanent, "no message number"))
            }
        }
        var spool: Spool?
        var spoolError: Error?
        var k = 0
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
            }
        })
        return zip(messages, results).map { m, r in
            r ?? .failed(m, DeliveryError(.temporary, "the server's reply ended before this message"))
        }
    }

    /// DELE now; the deletion happens at QUIT (`close()`), which reports it.
    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how == .delete, !messages.isEmpty else { return [] }
        let c = try await session()
        let numbers = messages.compactMap { m -> (Int, String)? in
            if case let .number(n) = m.locator { return (n, m.ident) }
            return nil
        }
        do {
            let accepted = Set(try await c.delete(numbers.map(\.0)))
            deleted += numbers.filter { accepted.contains($0.0) }.map(\.1)
        } catch let e as POP3Error {
            throw DeliveryError(.temporary, e.description)
        }
        return []
    }

    public func close() async throws -> [String: [String]] {
        guard let c = client else { return [:] }
        client = nil
        try await c.quit()
        defer { deleted = [] }
        return deleted.isEmpty ? [:] : [Self.mailboxName: deleted]
    }
}
