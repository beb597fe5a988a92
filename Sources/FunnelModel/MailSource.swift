import MailMessage
import NIOCore

/// Where messages come from: an IMAP or POP3 account, an mbox file, a Maildir.
///
/// The transfer engine never sees the protocol; it lists, fetches into spools and disposes through
/// this table of operations, as mbsync's sync engine talks to its drivers.
public protocol MailSource: AnyObject {
    /// The canonical identity of the source (its URL without secrets): the ledger's `account`.
    var identity: String { get }

    /// The mailboxes to read, in order.
    func mailboxes() async throws -> [String]

    /// Opens `mailbox` and says what its idents are valid under.
    func select(mailbox: String) async throws -> MailboxInfo

    /// Lists what `mailbox` holds now, in pages of at most `pageSize` messages, calling `page` for
    /// each in turn. The engine delivers a page before the next is listed, so memory depends on
    /// the page size, never on the mailbox size.
    /// - Parameter after: when the source supports incremental listing, list only UIDs above this
    ///   (the ledger's high-water mark); the listing is then not complete.
    func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws

    /// Whether `list(after:)` lists incrementally (IMAP); other sources list everything every time.
    var supportsIncrementalListing: Bool { get }

    /// Streams each message's bytes into a fresh spool made by `makeSpool`; a message that cannot be
    /// read becomes a `.failed` result and the others go on.
    func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult]

    /// As `fetch(_:mailbox:makeSpool:)`; `upcoming` says, when this batch is in, which batch the
    /// engine will ask for next (nil when it does not know yet). A source that can ask its server
    /// for it right then does so (IMAP), and keeps the server busy between the two calls.
    ///
    /// `horizon`, when not empty, is every batch the engine means to fetch after this one, in
    /// order, with nothing else asked of the source in between (no disposals between batches). A
    /// source may then ask its server for this batch and those in one request, and read the
    /// response a batch per call, as the calls come (IMAP: one UID FETCH, so the server streams
    /// without stopping at each batch's end). It reads no further than the batch asked for, so
    /// the engine's pace still bounds what is held in memory.
    func fetch(_ messages: [ListedMessage], mailbox: String, upcoming: @escaping @Sendable () -> [ListedMessage]?,
               horizon: @escaping @Sendable () -> [[ListedMessage]],
               makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult]

    /// What `dispose` can do here (an mbox file is read-only).
    var supportedDisposals: Set<Disposal> { get }

    /// Removes or flags messages whose delivery is committed. Returns the idents it disposed of;
    /// a source whose disposals take effect only at `close()` (POP3's DELE, committed by QUIT)
    /// returns none here and reports them from `close()`.
    func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String]

    /// Ends the session and returns the disposals it committed, by mailbox (POP3: the DELEs that a
    /// QUIT answered +OK carried out). Throws when that commit failed: then nothing was disposed.
    func close() async throws -> [String: [String]]
}

extension MailSource {
    public func fetch(_ messages: [ListedMessage], mailbox: String, upcoming: @escaping @Sendable () -> [ListedMessage]?,
                      horizon: @escaping @Sendable () -> [[ListedMessage]],
                      makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        try await fetch(messages, mailbox: mailbox, makeSpool: makeSpool)
    }

    public func fetch(_ messages: [ListedMessage], mailbox: String, upcoming: @escaping @Sendable () -> [ListedMessage]?,
                      makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        try await fetch(messages, mailbox: mailbox, upcoming: upcoming, horizon: { [] }, makeSpool: makeSpool)
    }
}

/// The outcome of fetching one listed message.
public enum FetchResult {
    case spooled(ListedMessage, SpooledMessage)
    case failed(ListedMessage, DeliveryError)

    public var listed: ListedMessage {
        switch self {
        case let .spooled(m, _), let .failed(m, _): return m
        }
    }

    public var isSpooled: Bool {
        if case .spooled = self { return true }
        return false
    }
}
