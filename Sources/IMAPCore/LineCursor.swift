/// Reads the grammar elements of one response line. Literals (`{n}` + CRLF + n bytes) that a
/// non-FETCH response carries, such as a mailbox name with a quote in it, have been read in full
/// already and stand between text parts.
struct LineCursor {
    enum Part {
        case text([UInt8])
        case literal([UInt8])
    }

    private var parts: [Part]
    private var part = 0
    private var offset = 0
    let maxNesting: Int

    init(parts: [Part], maxNesting: Int) {
        self.parts = parts
        self.maxNesting = maxNesting
    }

    init(_ text: [UInt8], maxNesting: Int) {
        self.init(parts: [.text(text)], maxNesting: maxNesting)
    }

    private var bytes: [UInt8] {
        if part < parts.count, case let .text(b) = parts[part] { return b }
        return []
    }

    /// The next byte of the current text part, nil at its end (or at a literal).
    var peek: UInt8? {
        guard part < parts.count, case let .text(b) = parts[part], offset < b.count else { return nil }
        return b[offset]
    }

    private var atLiteral: Bool {
        guard part < parts.count else { return false }
        if case .literal = parts[part] { return true }
        if case let .text(b) = parts[part], offset >= b.count, part + 1 < parts.count, case .literal = parts[part + 1] { return true }
        return false
    }

    var atEnd: Bool {
        var p = part, o = offset
        while p < parts.count {
            switch parts[p] {
            case .literal: return false
            case let .text(b): if o < b.count { return false }
            }
            p += 1
            o = 0
        }
        return true
    }

    mutating func skipSpaces() {
        while peek == 0x20 { offset += 1 }
    }

    mutating func expect(_ byte: UInt8) throws {
        guard peek == byte else { throw IMAPParseError.malformed("expected '\(Character(Unicode.Scalar(byte)))' in \(debugText)") }
        offset += 1
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        offset += 1
        return true
    }

    /// `atom = 1*ATOM-CHAR`; with `allowBracket`, `[` and `]` too, as flags, labels and unquoted
    /// mailbox names carry them (Gmail's `OIB-Seen-[Gmail]/Sent`), where a FETCH item's name must
    /// stop at its section's `[`.
    mutating func atom(allowBracket: Bool = false) throws -> String {
        let start = offset
        let b = bytes
        while offset < b.count, Self.isAtomChar(b[offset]) || (allowBracket && Self.isBracket(b[offset])) { offset += 1 }
        guard offset > start else { throw IMAPParseError.malformed("expected an atom in \(debugText)") }
        return String(decoding: b[start..<offset], as: UTF8.self)
    }

    /// `number = 1*DIGIT`
    mutating func number() throws -> UInt64 {
        let start = offset
        let b = bytes
        var value: UInt64 = 0
        while offset < b.count, b[offset] >= 0x30, b[offset] <= 0x39 {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b[offset] - 0x30))
            guard !o1, !o2 else { throw IMAPParseError.malformed("number too large in \(debugText)") }
            value = a
            offset += 1
        }
        guard offset > start else { throw IMAPParseError.malformed("expected a number in \(debugText)") }
        return value
    }

    mutating func number32() throws -> UInt32 {
        let n = try number()
        guard n <= UInt32.max else { throw IMAPParseError.malformed("number too large for 32 bits in \(debugText)") }
        return UInt32(n)
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` with `\"` and `\\` escapes.
    mutating func quoted() throws -> [UInt8] {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        let b = bytes
        while offset < b.count {
            let c = b[offset]
            offset += 1
            if c == UInt8(ascii: "\"") { return out }
            if c == UInt8(ascii: "\\") {
                guard offset < b.count else { break }
                out.append(b[offset])
                offset += 1
            } else {
                out.append(c)
            }
        }
        throw IMAPParseError.malformed("unterminated quoted string in \(debugText)")
    }

    /// A literal that was read in full, when one comes next.
    mutating func literal() -> [UInt8]? {
        guard atLiteral else { return nil }
        if case .text = parts[part] { part += 1; offset = 0 }
        guard case let .literal(b) = parts[part] else { return nil }
        part += 1
        offset = 0
        return b
    }

    /// `string = quoted / literal`
    mutating func string() throws -> [UInt8] {
        if let l = literal() { return l }
        return try quoted()
    }

    /// `astring = 1*ASTRING-CHAR / string`; an unquoted one may hold brackets (`[Gmail]`) and, with
    /// `allowTab`, tabs (Exchange's unquoted folder names), so it is read whole, never cut short.
    mutating func astring(allowTab: Bool = false) throws -> [UInt8] {
        if atLiteral || peek == UInt8(ascii: "\"") { return try string() }
        let start = offset
        let b = bytes
        while offset < b.count, Self.isAtomChar(b[offset]) || Self.isBracket(b[offset]) || (allowTab && b[offset] == 0x09) {
            offset += 1
        }
        guard offset > start else { throw IMAPParseError.malformed("expected an astring in \(debugText)") }
        return Array(b[start..<offset])
    }

    /// `nstring = string / nil`
    mutating func nstring() throws -> [UInt8]? {
        if peekWord("NIL") { offset += 3; return nil }
        return try string()
    }

    func peekWord(_ word: String) -> Bool {
        let w = Array(word.utf8)
        let b = bytes
        guard offset + w.count <= b.count else { return false }
        for (i, c) in w.enumerated() where b[offset + i] | 0x20 != c | 0x20 { return false }
        let after = offset + w.count
        return after == b.count || !Self.isAtomChar(b[after])
    }

    /// `"(" [flag *(SP flag)] ")"`, as FLAGS and attribute lists are written; brackets are taken
    /// inside a flag, as Gmail sends them.
    mutating func atomList() throws -> [String] {
        try expect(UInt8(ascii: "("))
        var out: [String] = []
        while true {
            skipSpaces()
            if consume(UInt8(ascii: ")")) { return out }
            out.append(try atom(allowBracket: true))
        }
    }

    /// Any value, written back as IMAP: an atom, a number, NIL, a quoted string (its escapes kept,
    /// so `"a\"b"` stays that), a literal (as a quoted string when it can be one), or a
    /// parenthesised list of them.
    mutating func anyValue(depth: Int = 0) throws -> String {
        guard depth <= maxNesting else { throw IMAPParseError.limitExceeded("nesting deeper than \(maxNesting)") }
        if let l = literal() { return Self.written(l) }
        switch peek {
        case UInt8(ascii: "\"")?:
            return Self.quote(try quoted())
        case UInt8(ascii: "(")?:
            offset += 1
            var items: [String] = []
            while true {
                skipSpaces()
                if consume(UInt8(ascii: ")")) { return "(" + items.joined(separator: " ") + ")" }
                guard !atEnd else { throw IMAPParseError.malformed("unclosed '(' in \(debugText)") }
                items.append(try anyValue(depth: depth + 1))
            }
        default:
            return try atom(allowBracket: true)
        }
    }

    /// `bytes` as a quoted string, `\` and `"` escaped.
    static func quote(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for c in bytes {
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(c)
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    /// A literal's bytes as a quoted string, or as a literal when a quoted string cannot hold them.
    static func written(_ bytes: [UInt8]) -> String {
        if bytes.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            return "{\(bytes.count)}\r\n" + String(decoding: bytes, as: UTF8.self)
        }
        return quote(bytes)
    }

    /// The rest of the line as text.
    mutating func rest() -> String {
        var out: [UInt8] = []
        while part < parts.count {
            switch parts[part] {
            case let .text(b): out += b[min(offset, b.count)...]
            case let .literal(b): out += b
            }
            part += 1
            offset = 0
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Up to (not including) `byte` in the current text part.
    mutating func until(_ byte: UInt8) throws -> String {
        let b = bytes
        let start = offset
        while offset < b.count, b[offset] != byte { offset += 1 }
        guard offset < b.count else { throw IMAPParseError.malformed("expected '\(Character(Unicode.Scalar(byte)))' in \(debugText)") }
        return String(decoding: b[start..<offset], as: UTF8.self)
    }

    var debugText: String {
        let b = bytes
        return "'" + String(decoding: b.prefix(120), as: UTF8.self) + (b.count > 120 ? "…" : "") + "'"
    }

    static func isBracket(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "[") || c == UInt8(ascii: "]")
    }

    /// ATOM-CHAR: any CHAR except atom-specials `(` `)` `{` SP CTL `%` `*` `"` `\` `]`; we also
    /// take `\` (flags), `*` and `%` (list wildcards, `\*`) since responses use them in atoms.
    static func isAtomChar(_ c: UInt8) -> Bool {
        guard c > 0x20, c < 0x7F else { return c >= 0x80 }  // 8-bit: UTF8=ACCEPT names
        switch c {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "]"),
             UInt8(ascii: "["):
            return false
        default:
            return true
        }
    }
}

/// A response the parser cannot accept and cannot pass over (a tagged one, one over a limit, a
/// FETCH whose events have begun): the connection it came on is no longer usable.
public enum IMAPParseError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case limitExceeded(String)

    public var description: String {
        switch self {
        case let .malformed(m): return "malformed server response: \(m)"
        case let .limitExceeded(m): return "server response over a limit: \(m)"
        }
    }
}
