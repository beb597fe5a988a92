import NIOCore

/// One event of an IMAP server's response stream. FETCH responses arrive piecewise, so a message
/// body is never held whole: `fetchBegan`, attributes, `fetchBodyBegan`, body chunks,
/// `fetchBodyEnded`, more attributes, `fetchEnded`.
/// - SeeAlso: RFC 3501 §7, RFC 9051 §7
public enum IMAPResponseEvent: Sendable, Equatable {
    case untagged(UntaggedResponse)
    case tagged(TaggedResponse)
    /// `+ text`: the server waits for a literal or an AUTHENTICATE step.
    case continuation(String)
    case fetchBegan(sequence: UInt32)
    case fetchAttribute(FetchAttribute)
    /// A body section's literal starts; `size` bytes follow as `fetchBodyBytes`.
    case fetchBodyBegan(section: String, size: Int)
    case fetchBodyBytes(ByteBuffer)
    case fetchBodyEnded
    /// A body section the server sent as `NIL`, or with no value at all (Yandex): it has no
    /// content to give, which is not an empty message.
    case fetchBodyNil(section: String)
    case fetchEnded
    /// An untagged response that could not be read, read to its end and passed over: nothing after
    /// it is out of step. A tagged response that cannot be read is an error instead.
    case unreadable(UnreadableResponse)
}

/// An untagged response the parser passed over, for the log and for the client to judge.
public struct UnreadableResponse: Sendable, Equatable {
    /// The response as sent, shortened, with each literal shown as its size.
    public var text: String
    /// Why it could not be read.
    public var problem: String
    /// Its name (`LIST`, `FETCH`, `EXISTS`…), when that much could be read: the client judges by
    /// it whether its command lost what it asked for.
    public var name: String?
    /// The message number, when it was a FETCH response (no event of it was given).
    public var fetchSequence: UInt32?

    public init(text: String, problem: String, name: String?, fetchSequence: UInt32?) {
        self.text = text
        self.problem = problem
        self.name = name
        self.fetchSequence = fetchSequence
    }
}

/// `OK`, `NO`, `BAD` (tagged and untagged), `PREAUTH` and `BYE` (untagged only).
public enum ResponseStatus: String, Sendable, Equatable {
    case ok = "OK", no = "NO", bad = "BAD", preauth = "PREAUTH", bye = "BYE"
}

/// A tagged completion: `a1 OK [APPENDUID 38505 3955] APPEND completed`.
public struct TaggedResponse: Sendable, Equatable {
    public var tag: String
    public var status: ResponseStatus
    public var code: ResponseCode?
    public var text: String

    public init(tag: String, status: ResponseStatus, code: ResponseCode?, text: String) {
        self.tag = tag
        self.status = status
        self.code = code
        self.text = text
    }
}

/// A LIST or LSUB entry: `* LIST (\HasNoChildren \Sent) "/" "Sent"`.
public struct ListEntry: Sendable, Equatable {
    public var attributes: [String]
    /// The hierarchy delimiter, nil when the server has none (NIL).
    public var delimiter: Character?
    /// The mailbox name as sent (modified UTF-7 unless UTF8=ACCEPT is enabled).
    public var name: String

    public init(attributes: [String], delimiter: Character?, name: String) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.name = name
    }

    /// Whether the mailbox can be selected (no `\Noselect` or `\NonExistent`).
    public var isSelectable: Bool {
        !attributes.contains { $0.caseInsensitiveCompare("\\Noselect") == .orderedSame || $0.caseInsensitiveCompare("\\NonExistent") == .orderedSame }
    }

    /// The RFC 6154 special use (`\Sent`, `\Trash`, `\All`…), if any.
    public var specialUse: String? {
        let uses = ["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Important"]
        return attributes.first { a in uses.contains { $0.caseInsensitiveCompare(a) == .orderedSame } }
    }
}

public enum UntaggedResponse: Sendable, Equatable {
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text` (the greeting is one of these).
    case status(ResponseStatus, code: ResponseCode?, text: String)
    case capability([String])
    case list(ListEntry)
    case lsub(ListEntry)
    /// `* STATUS INBOX (MESSAGES 3 UIDNEXT 4)`: the items with a number; the others (Gmail's
    /// `APPENDLIMIT NIL`, `MAILBOXID (…)`) are passed over.
    case mailboxStatus(mailbox: String, items: [String: UInt64])
    /// `* SEARCH 2 3 6`.
    case search([UInt32])
    /// `* ESEARCH (TAG "a1") UID COUNT 3 ALL 4:6` (RFC 4731): the result items by name.
    case esearch(tag: String?, uid: Bool, items: [String: String])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    /// `* VANISHED (EARLIER) 41,43:116` (RFC 7162).
    case vanished(earlier: Bool, uids: UIDSet)
    case flags([String])
    case enabled([String])
    /// Anything else, kept as text (NAMESPACE, ID, METADATA…).
    case other(String)
}

/// One FETCH data item other than a body section.
public enum FetchAttribute: Sendable, Equatable {
    case uid(UInt32)
    case flags([String])
    /// `INTERNALDATE "17-Jul-1996 02:44:25 -0700"`, as sent.
    case internalDate(String)
    case rfc822Size(Int)
    case modSeq(UInt64)
    /// Gmail's `X-GM-MSGID`.
    case gmailMessageID(UInt64)
    /// Any other item (and `MODSEQ (-1)`, as Zoho sends it), with its value written back as IMAP:
    /// strings keep their escapes, literals become quoted strings when they can.
    case other(name: String, value: String)
}
