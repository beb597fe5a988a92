import MailMessage
import Foundation

/// What identifies one message at its source, for ever: the ledger's primary key.
///
/// - POP3: `(account, "INBOX", 0, UIDL)`
/// - IMAP: `(account, mailbox, UIDVALIDITY, UID)`
/// - mbox: `(account, "", 0, "<sha256 of the message>/<n>")`, n counting identical copies in the file
/// - Maildir: `(account, folder, 0, unique part of the file name)`
///
/// `account` is the ledger's account (`LedgerAccount`): the source's canonical URL (no password)
/// and the target's, so each target of a source has rows of its own.
public struct SourceKey: Sendable, Hashable, CustomStringConvertible {
    public var account: String
    public var mailbox: String
    public var uidValidity: UInt32
    public var ident: String

    public init(account: String, mailbox: String, uidValidity: UInt32 = 0, ident: String) {
        self.account = account
        self.mailbox = mailbox
        self.uidValidity = uidValidity
        self.ident = ident
    }

    public var description: String {
        let mb = mailbox.isEmpty ? "" : " \(mailbox)"
        let uv = uidValidity == 0 ? "" : " uidvalidity=\(uidValidity)"
        // The source alone: logs already say which target.
        let source = account.range(of: LedgerAccount.separator).map { account[..<$0.lowerBound] } ?? account[...]
        return "\(source)\(mb)\(uv) \(ident)"
    }
}

/// A source mailbox as selected: the UIDVALIDITY its idents are valid under (0 where the notion does
/// not exist) and what is known of its size before listing.
public struct MailboxInfo: Sendable {
    public var mailbox: String
    public var uidValidity: UInt32
    /// Whether a listing covers everything the mailbox holds (false for an incremental listing such
    /// as IMAP's `UID FETCH last+1:*`): only then does an unlisted key mean the message is gone.
    public var isComplete: Bool
    /// What the mailbox holds, when the source knows before listing (for progress display).
    public var expectedMessages: Int?
    public var expectedBytes: Int?

    public init(mailbox: String, uidValidity: UInt32 = 0, isComplete: Bool = true,
                expectedMessages: Int? = nil, expectedBytes: Int? = nil) {
        self.mailbox = mailbox
        self.uidValidity = uidValidity
        self.isComplete = isComplete
        self.expectedMessages = expectedMessages
        self.expectedBytes = expectedBytes
    }
}

/// One message as a source lists it, before its body is read.
public struct ListedMessage: Sendable, Hashable {
    /// The source-specific identity (UIDL, UID, file name, content hash); see `SourceKey`.
    public var ident: String
    /// The size the source announces (for batching and limits); nil when unknown.
    public var size: Int?
    public var flags: MessageFlags
    public var internalDate: Date?
    /// Where the source finds the message again (a file offset, a file name, a UID, a message number).
    public var locator: Locator

    public init(ident: String, size: Int?, flags: MessageFlags = MessageFlags(), internalDate: Date? = nil, locator: Locator) {
        self.ident = ident
        self.size = size
        self.flags = flags
        self.internalDate = internalDate
        self.locator = locator
    }

    public enum Locator: Sendable, Hashable {
        case byteRange(offset: Int64, length: Int64)
        case file(String)
        case uid(UInt32)
        case number(Int)
    }
}

/// What happens at the source once a delivery is committed.
public enum Disposal: String, Sendable, CaseIterable {
    case keep
    case markSeen = "mark-seen"
    case delete
}
