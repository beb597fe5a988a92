import FunnelModel
import Crypto
import Foundation
import MailMessage
import NIOCore

/// An mbox file as a source (mboxrd by default, mboxo on request), read-only.
///
/// A message's ident is the SHA-256 of its unescaped bytes and its rank among identical copies
/// (`<sha256>/<n>`), so keys survive messages being added or removed elsewhere in the file, and two
/// identical messages stay two messages. Flags come from `Status:`/`X-Status:`, the date from the
/// separator line. The bytes are delivered as they are: those headers are not removed.
public final class MboxSource: MailSource {
    public let path: String
    public let format: MboxFormat
    public let identity: String
    public var supportedDisposals: Set<Disposal> { [.keep] }
    /// The one mailbox an mbox file holds.
    public static let mailboxName = "INBOX"
    /// The file as it was when its listing began: while it is still that file, unchanged, a listed
    /// byte range still holds the message whose hash names it, and fetching need not hash it again.
    private var listedVersion: LocalFile.Version?
    /// How long a file must have been left alone before its listing is trusted (see `list`).
    var settleSeconds: TimeInterval = 2

    public init(path: String, format: MboxFormat = .mboxrd) {
        self.path = absolutePath(path)
        self.format = format
        self.identity = MboxDriver.identity(ofPath: self.path)
    }

    public func mailboxes() async throws -> [String] { [Self.mailboxName] }

    public func select(mailbox: String) async throws -> MailboxInfo {
        let size = try openFile().size
        return MailboxInfo(mailbox: mailbox, expectedBytes: Int(size))
    }

    public var supportsIncrementalListing: Bool { false }

    /// Lists in pages, the next page scanned while the one before is delivered. The first page is
    /// small, so delivery starts after a fraction of the file is read (reading hashes every byte).
    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let file = try openFile()
        // File times tick coarsely (a few ms): a write in the same tick as a change seen now could
        // leave the change time as it is. Only a file unchanged for a while is trusted (as git
        // does with racily clean files); a later write then always moves its change time.
        let version = try file.version
        let settled = Double(version.changed.tv_sec) + Double(version.changed.tv_nsec) / 1e9 < Date().timeIntervalSince1970 - settleSeconds
        listedVersion = settled ? version : nil
        let lister = Handoff(MboxLister(file: file, format: format, identity: identity))
        func scan(_ count: Int) -> Task<[ListedMessage], Error> {
            Task { try lister.value.next(count) }
        }
        var next = scan(max(1, min(pageSize, Self.firstPageSize)))
        while true {
            let messages = try await next.value
            guard !messages.isEmpty else { return }
            // One task at a time has the lister: this one starts once the one before has ended.
            next = scan(pageSize)
            do {
                try await page(messages)
            } catch {
                next.cancel()
                _ = await next.result
                throw error
            }
        }
    }

    /// How many messages the first page holds: enough to keep the transfer busy while the next
    /// page is scanned.
    static let firstPageSize = 1024

    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        let file = try openFile()
        // The same file, not written since its listing began (its change time, which nothing can
        // set back, and its size): every listed range still holds the message its hash names, and
        // the source hash is not taken again. Otherwise each message is checked against its name.
        let current = try file.version
        let unchanged = listedVersion.map { $0 == current } ?? false
        var results: [FetchResult] = []
        for m in messages {
            guard case let .byteRange(offset, length) = m.locator else {
                results.append(.failed(m, DeliveryError(.permanent, "no byte range for \(m.ident)")))
                continue
            }
            let spool = try makeSpool()
            spool.reserve(Int(length))
            if unchanged { spool.trustSource() }
            var scanner = MboxScanner(format: format, startOffset: offset)
            var count = 0
            var spoolError: Error?
            func handle(_ event: MboxScanner.Event) throws {
                switch event {
                case .begin: count += 1
                case let .body(bytes) where count == 1:
                    try spool.append(bytes)
                default: break
                }
            }
            do {
                try file.read(from: offset, length: length) { try scanner.feed($0, handle) }
                try scanner.finish(handle)
            } catch let error as MboxScanner.ScanError {
                spoolError = error
            }
            let spooled = spool.finish(flags: m.flags, internalDate: m.internalDate)
            // The file changed since it was listed if the region no longer holds exactly the message.
            if spoolError != nil || count != 1 || (!unchanged && "\(spooled.sourceSHA256)/" != m.ident.prefix(65)) {
                results.append(.failed(m, DeliveryError(.temporary, "the mbox changed since it was listed; run again")))
            } else {
                results.append(.spooled(m, spooled))
            }
        }
        return results
    }

    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how == .keep else {
            throw FunnelError.usage("\(identity): an mbox source is read-only; use --after-delivery keep")
        }
        return []
    }

    public func close() async throws -> [String: [String]] { [:] }

    private func openFile() throws -> LocalFile {
        do {
            return try LocalFile(path: path)
        } catch FunnelError.io(_, _, let code) {
            throw FunnelError.noInput(identity, reason: "cannot open: \(String(cString: strerror(code)))")
        }
    }
}

/// Reads an mbox file a page at a time: the messages' byte ranges, hashes (their idents), flags
/// and dates. Used by one task at a time.
final class MboxLister {
    private let file: LocalFile
    private let identity: String
    private var scanner: MboxScanner
    /// Ranks among identical copies, by the first 64 bits of the hash: 8 bytes a message rather
    /// than a whole hash. Two different messages sharing a prefix (about 1 in 10^8 for a million
    /// messages) only get ranks 0 and 1 instead of 0 and 0: idents stay unique and stable.
    private var copies: [UInt64: UInt32] = [:]
    private var hasher = SHA256()
    private var headers = HeaderScanner()
    private var size = 0
    private var start: Int64 = 0
    private var date: Date?
    /// Messages scanned past the last page handed out.
    private var ready: [ListedMessage] = []
    private var position: Int64 = 0
    private var ended = false
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

    init(file: LocalFile, format: MboxFormat, identity: String) {
        self.file = file
        self.identity = identity
        self.scanner = MboxScanner(format: format)
    }

    deinit { buffer.deallocate() }

    /// The next `count` messages (fewer at the end of the file; none after it).
    func next(_ count: Int) throws -> [ListedMessage] {
        while ready.count < count && !ended {
            try Task.checkCancellation()
            let n = try file.read(at: position, into: buffer)
            do {
                if n == 0 {
                    ended = true
                    try scanner.finish(handle)
                } else {
                    position += Int64(n)
                    try scanner.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), handle)
                }
            } catch let MboxScanner.ScanError.notAnMbox(firstLine) {
                throw FunnelError.badSource(identity, reason: "not an mbox file: it does not start with a 'From ' line (found '\(firstLine)')")
            }
        }
        let page = Array(ready.prefix(count))
        ready.removeFirst(page.count)
        return page
    }

    private func handle(_ event: MboxScanner.Event) {
        switch event {
        case let .begin(fromLine, offset):
            hasher = SHA256()
            headers = HeaderScanner()
            size = 0
            start = offset
            date = MboxFromLine.parse(fromLine)?.date
        case let .body(bytes):
            hasher.update(bufferPointer: bytes)
            headers.consume(bytes)
            size += bytes.count
        case let .end(offset):
            let digest = hasher.finalize()
            let prefix = digest.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            let n = copies[prefix, default: 0]
            copies[prefix] = n + 1
            let fields = headers.fields
            func field(_ name: String) -> String? { fields.first { $0.name.lowercased() == name }?.value }
            let flags = MessageFlags(mboxStatus: field("status"), xStatus: field("x-status"))
            ready.append(ListedMessage(ident: "\(digest.hexString)/\(n)", size: size, flags: flags, internalDate: date,
                                       locator: .byteRange(offset: start, length: offset - start)))
        }
    }
}
