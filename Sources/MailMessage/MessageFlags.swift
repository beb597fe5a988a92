/// The flags a message carries from one store to another: the IMAP system flags plus keywords.
///
/// mbox (`Status:`/`X-Status:`), Maildir (`:2,` suffix) and IMAP (`FLAGS`) all map onto this set.
/// - SeeAlso: RFC 3501 §2.3.2
public struct MessageFlags: Sendable, Hashable {
    public var seen = false
    public var answered = false
    public var flagged = false
    public var deleted = false
    public var draft = false
    /// IMAP keywords (`$Forwarded`, `$Junk`, …), kept in the order first seen.
    public var keywords: [String] = []

    public init(seen: Bool = false, answered: Bool = false, flagged: Bool = false,
                deleted: Bool = false, draft: Bool = false, keywords: [String] = []) {
        self.seen = seen
        self.answered = answered
        self.flagged = flagged
        self.deleted = deleted
        self.draft = draft
        self.keywords = keywords
    }

    public var isEmpty: Bool { !seen && !answered && !flagged && !deleted && !draft && keywords.isEmpty }

    /// `$Forwarded` is the keyword that Maildir's `P` (passed) flag corresponds to.
    public static let forwardedKeyword = "$Forwarded"

    /// The system flags as IMAP spells them, in a stable order.
    public var imapSystemFlags: [String] {
        var out: [String] = []
        if seen { out.append("\\Seen") }
        if answered { out.append("\\Answered") }
        if flagged { out.append("\\Flagged") }
        if deleted { out.append("\\Deleted") }
        if draft { out.append("\\Draft") }
        return out
    }
}

extension MessageFlags {
    /// Reads Maildir's info suffix (the part after `:2,`): `D`raft, `F`lagged, `P`assed, `R`eplied,
    /// `S`een, `T`rashed. Lower-case letters are Dovecot keyword indexes and carry no portable meaning.
    /// - SeeAlso: https://cr.yp.to/proto/maildir.html
    public init(maildirInfo: Substring) {
        self.init()
        for ch in maildirInfo {
            switch ch {
            case "D": draft = true
            case "F": flagged = true
            case "P": if !keywords.contains(Self.forwardedKeyword) { keywords.append(Self.forwardedKeyword) }
            case "R": answered = true
            case "S": seen = true
            case "T": deleted = true
            default: continue
            }
        }
    }

    /// The Maildir info letters, in ASCII order as the Maildir convention requires.
    public var maildirInfo: String {
        var letters: [Character] = []
        if draft { letters.append("D") }
        if flagged { letters.append("F") }
        if keywords.contains(Self.forwardedKeyword) { letters.append("P") }
        if answered { letters.append("R") }
        if seen { letters.append("S") }
        if deleted { letters.append("T") }
        return String(letters)
    }

    /// Merges mbox's `Status:` (`R` read, `O` old) and `X-Status:` (`A` answered, `F` flagged,
    /// `T` draft, `D` deleted) header values, as mutt and Thunderbird write them.
    public init(mboxStatus: String?, xStatus: String?) {
        self.init()
        if let status = mboxStatus, status.contains("R") { seen = true }
        if let x = xStatus {
            if x.contains("A") { answered = true }
            if x.contains("F") { flagged = true }
            if x.contains("T") { draft = true }
            if x.contains("D") { deleted = true }
        }
    }
}
