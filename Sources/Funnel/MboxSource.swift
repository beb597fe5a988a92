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
    public var identity: String { "mbox:\(path)" }
    /// The one mailbox an mbox file holds.
    public static let mailboxName = "INBOX"

    public init(path: String, format: MboxFormat = .mboxrd) {
        self.path = absolutePath(path)
        self.format = format
    }

    public func mailboxes() async throws -> [String] { [Self.mailboxName] }

    public func list(mailbox: String) async throws -> MailboxListing {
        let file = try openFile()
        var scanner = MboxScanner(format: format)
        var messages: [ListedMessage] = []
        var copies: [String: Int] = [:]
        var hasher = SHA256()
        var headers = HeaderScanner()
        var size = 0
        var start: Int64 = 0
        var date: Date?
        func handle(_ event: MboxScanner.Event) {
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
                let sha = hasher.finalize().hexString
                let n = copies[sha, default: 0]
                copies[sha] = n + 1
                let flags = MessageFlags(mboxStatus: headers.value(of: "Status"), xStatus: headers.value(of: "X-Status"))
                messages.append(ListedMessage(ident: "\(sha)/\(n)", size: size, flags: flags, internalDate: date,
                                              locator: .byteRange(offset: start, length: offset - start)))
            }
        }
        do {
            try file.read { bytes in try scanner.feed(bytes, handle) }
            try scanner.finish(handle)
        } catch let MboxScanner.ScanError.notAnMbox(firstLine) {
            throw FunnelError.badSource(identity, reason: "not an mbox file: it does not start with a 'From ' line (found '\(firstLine)')")
        }
        return MailboxListing(mailbox: mailbox, messages: messages)
    }

    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: () throws -> Spool) async throws -> [FetchResult] {
        let file = try openFile()
        var results: [FetchResult] = []
        for m in messages {
            guard case let .byteRange(offset, length) = m.locator else {
                results.append(.failed(m, DeliveryError(.permanent, "no byte range for \(m.ident)")))
                continue
            }
            let spool = try makeSpool()
            var scanner = MboxScanner(format: format, startOffset: offset)
            var count = 0
            var spoolError: Error?
            var raw = SHA256()
            func handle(_ event: MboxScanner.Event) throws {
                switch event {
                case .begin: count += 1
                case let .body(bytes) where count == 1:
                    raw.update(bufferPointer: bytes)
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
            if spoolError != nil || count != 1 || "\(raw.finalize().hexString)/" != m.ident.prefix(65) {
                results.append(.failed(m, DeliveryError(.temporary, "the mbox changed since it was listed; run again")))
            } else {
                results.append(.spooled(m, spooled))
            }
        }
        return results
    }

    public var supportedDisposals: Set<Disposal> { [.keep] }

    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        guard how == .keep else {
            throw FunnelError.usage("\(identity): an mbox source is read-only; use --after-delivery keep")
        }
        return []
    }

    public func close() async throws {}

    private func openFile() throws -> LocalFile {
        do {
            return try LocalFile(path: path)
        } catch FunnelError.io(_, _, let code) {
            throw FunnelError.noInput(identity, reason: "cannot open: \(String(cString: strerror(code)))")
        }
    }
}
