import Foundation

/// A command a client sends. APPEND is built from `IMAPCommandEncoder.appendStart` and
/// `appendItem` instead, since its message data is streamed, not held.
/// - SeeAlso: RFC 3501 §6, RFC 9051 §6
public enum IMAPCommand: Sendable, Equatable {
    case capability
    case noop
    case logout
    case startTLS
    case login(user: String, password: String)
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959); the response is base64.
    case authenticate(mechanism: String, initialResponse: String?)
    /// `ID ("name" "mailfunnel" …)` (RFC 2971).
    case id([(String, String)])
    case enable([String])
    /// `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when asked (RFC 6154).
    case list(reference: String, pattern: String, returnSpecialUse: Bool)
    case create(String)
    case select(String)
    case examine(String)
    case status(String, items: [String])
    /// `UID SEARCH criteria` (criteria as IMAP text, e.g. `UID 101:*`).
    case uidSearch(String)
    case uidFetch(UIDSet, items: [String])
    /// `UID STORE set +FLAGS.SILENT (\Deleted)`.
    case uidStore(UIDSet, operation: String, flags: [String])
    case uidExpunge(UIDSet)
    case expunge
    case idle
    case unselect
    case close

    /// Whether the command carries a secret (the trace shows it redacted).
    public var isSensitive: Bool {
        switch self {
        case .login, .authenticate: return true
        default: return false
        }
    }

    public static func == (a: IMAPCommand, b: IMAPCommand) -> Bool {
        switch (a, b) {
        case let (.id(x), .id(y)): return x.map { [$0.0, $0.1] } == y.map { [$0.0, $0.1] }
        case (.capability, .capability), (.noop, .noop), (.logout, .logout), (.startTLS, .startTLS),
             (.expunge, .expunge), (.idle, .idle), (.unselect, .unselect), (.close, .close):
            return true
        case let (.login(u1, p1), .login(u2, p2)): return u1 == u2 && p1 == p2
        case let (.authenticate(m1, r1), .authenticate(m2, r2)): return m1 == m2 && r1 == r2
        case let (.enable(x), .enable(y)): return x == y
        case let (.list(r1, p1, s1), .list(r2, p2, s2)): return r1 == r2 && p1 == p2 && s1 == s2
        case let (.create(x), .create(y)), let (.select(x), .select(y)), let (.examine(x), .examine(y)),
             let (.uidSearch(x), .uidSearch(y)):
            return x == y
        case let (.status(m1, i1), .status(m2, i2)): return m1 == m2 && i1 == i2
        case let (.uidFetch(s1, i1), .uidFetch(s2, i2)): return s1 == s2 && i1 == i2
        case let (.uidStore(s1, o1, f1), .uidStore(s2, o2, f2)): return s1 == s2 && o1 == o2 && f1 == f2
        case let (.uidExpunge(x), .uidExpunge(y)): return x == y
        default: return false
        }
    }
}

/// What the client writes, in order. A synchronizing literal makes the client wait for the
/// server's `+` before going on.
public enum CommandChunk: Sendable, Equatable {
    case bytes([UInt8])
    case waitForContinuation
}

/// Encodes commands, choosing for each string an atom, a quoted string or a literal.
///
/// ```
/// astring = 1*ASTRING-CHAR / string
/// string  = quoted / literal
/// literal = "{" number ["+"] "}" CRLF *CHAR8      ; "+" is LITERAL+ / LITERAL- (RFC 7888)
/// ```
public struct IMAPCommandEncoder: Sendable {
    /// LITERAL+: every literal may be non-synchronizing.
    public var literalPlus = false
    /// LITERAL-: literals up to 4096 bytes may be non-synchronizing.
    public var literalMinus = false
    /// UTF8=ACCEPT enabled: 8-bit text may go in quoted strings.
    public var utf8Accept = false

    public init(literalPlus: Bool = false, literalMinus: Bool = false, utf8Accept: Bool = false) {
        self.literalPlus = literalPlus
        self.literalMinus = literalMinus
        self.utf8Accept = utf8Accept
    }

    /// Encodes a tagged command.
    public func encode(tag: String, _ command: IMAPCommand) -> [CommandChunk] {
        var w = Writer(encoder: self)
        w.raw(tag + " ")
        switch command {
        case .capability: w.raw("CAPABILITY")
        case .noop: w.raw("NOOP")
        case .logout: w.raw("LOGOUT")
        case .startTLS: w.raw("STARTTLS")
        case .expunge: w.raw("EXPUNGE")
        case .idle: w.raw("IDLE")
        case .unselect: w.raw("UNSELECT")
        case .close: w.raw("CLOSE")
        case let .login(user, password):
            w.raw("LOGIN ")
            w.astring(user)
            w.raw(" ")
            w.astring(password)
        case let .authenticate(mechanism, initial):
            w.raw("AUTHENTICATE " + mechanism)
            if let initial { w.raw(" " + (initial.isEmpty ? "=" : initial)) }
        case let .id(fields):
            w.raw("ID ")
            if fields.isEmpty {
                w.raw("NIL")
            } else {
                w.raw("(")
                for (i, (k, v)) in fields.enumerated() {
                    if i > 0 { w.raw(" ") }
                    w.quotedOrLiteral(k)
                    w.raw(" ")
                    w.quotedOrLiteral(v)
                }
                w.raw(")")
            }
        case let .enable(capabilities):
            w.raw("ENABLE " + capabilities.joined(separator: " "))
        case let .list(reference, pattern, specialUse):
            w.raw("LIST ")
            w.quotedOrLiteral(reference)
            w.raw(" ")
            w.quotedOrLiteral(pattern)
            if specialUse { w.raw(" RETURN (SPECIAL-USE)") }
        case let .create(mailbox):
            w.raw("CREATE ")
            w.astring(mailbox)
        case let .select(mailbox):
            w.raw("SELECT ")
            w.astring(mailbox)
        case let .examine(mailbox):
            w.raw("EXAMINE ")
            w.astring(mailbox)
        case let .status(mailbox, items):
            w.raw("STATUS ")
            w.astring(mailbox)
            w.raw(" (" + items.joined(separator: " ") + ")")
        case let .uidSearch(criteria):
            w.raw("UID SEARCH " + criteria)
        case let .uidFetch(set, items):
            w.raw("UID FETCH \(set) (" + items.joined(separator: " ") + ")")
        case let .uidStore(set, operation, flags):
            w.raw("UID STORE \(set) \(operation) (" + flags.joined(separator: " ") + ")")
        case let .uidExpunge(set):
            w.raw("UID EXPUNGE \(set)")
        }
        w.raw("\r\n")
        return w.finish()
    }

    /// `DONE` ends IDLE (it has no tag).
    public func done() -> [CommandChunk] { [.bytes(Array("DONE\r\n".utf8))] }

    /// `tag APPEND mailbox`: then one `appendItem` per message (two or more need MULTIAPPEND),
    /// each followed by its message bytes, and finally `appendEnd`.
    /// - SeeAlso: RFC 3501 §6.3.11, RFC 3502 (MULTIAPPEND)
    public func appendStart(tag: String, mailbox: String) -> [CommandChunk] {
        var w = Writer(encoder: self)
        w.raw(tag + " APPEND ")
        w.astring(mailbox)
        return w.finish()
    }

    /// ` (\Seen) "17-Jul-1996 02:44:25 +0000" {size+}` CRLF: the message bytes come next.
    public func appendItem(flags: [String], date: Date?, size: Int) -> [CommandChunk] {
        var w = Writer(encoder: self)
        if !flags.isEmpty { w.raw(" (" + flags.joined(separator: " ") + ")") }
        if let date { w.raw(" \"" + InternalDate.format(date) + "\"") }
        w.raw(" ")
        w.literalAnnouncement(size)
        return w.finish()
    }

    /// The CRLF that ends an APPEND after its last message.
    public func appendEnd() -> [CommandChunk] { [.bytes([0x0D, 0x0A])] }

    /// Whether a literal of `size` bytes may be sent without waiting for `+`.
    public func nonSynchronizing(_ size: Int) -> Bool {
        literalPlus || (literalMinus && size <= 4096)
    }

    struct Writer {
        let encoder: IMAPCommandEncoder
        var chunks: [CommandChunk] = []
        var current: [UInt8] = []

        mutating func raw(_ s: String) { current += Array(s.utf8) }

        mutating func literalAnnouncement(_ size: Int) {
            if encoder.nonSynchronizing(size) {
                raw("{\(size)+}\r\n")
            } else {
                raw("{\(size)}\r\n")
                chunks.append(.bytes(current))
                current = []
                chunks.append(.waitForContinuation)
            }
        }

        mutating func literal(_ bytes: [UInt8]) {
            literalAnnouncement(bytes.count)
            current += bytes
        }

        mutating func astring(_ s: String) {
            let bytes = Array(s.utf8)
            if !bytes.isEmpty, bytes.allSatisfy(Self.isAStringChar) {
                current += bytes
            } else {
                quotedOrLiteral(s)
            }
        }

        mutating func quotedOrLiteral(_ s: String) {
            let bytes = Array(s.utf8)
            let quotable = bytes.allSatisfy { b in
                b != 0 && b != 0x0D && b != 0x0A && (b < 0x80 || encoder.utf8Accept)
            }
            guard quotable else { return literal(bytes) }
            current.append(UInt8(ascii: "\""))
            for b in bytes {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { current.append(UInt8(ascii: "\\")) }
                current.append(b)
            }
            current.append(UInt8(ascii: "\""))
        }

        mutating func finish() -> [CommandChunk] {
            if !current.isEmpty { chunks.append(.bytes(current)) }
            return chunks
        }

        /// ASTRING-CHAR = ATOM-CHAR / resp-specials (`]`).
        static func isAStringChar(_ b: UInt8) -> Bool {
            guard b > 0x20, b < 0x7F else { return false }
            switch b {
            case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
                 UInt8(ascii: "\""), UInt8(ascii: "\\"):
                return false
            default:
                return true
            }
        }
    }
}
