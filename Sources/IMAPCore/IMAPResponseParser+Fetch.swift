import NIOCore

/// FETCH responses: items read as their lines arrive, body sections streamed.
///
/// ```
/// msg-att        = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic / msg-att-static)) ")"
/// msg-att-static = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time / "RFC822.SIZE" SP number /
///                  "UID" SP uniqueid / "BODY" section ["<" number ">"] SP nstring /
///                  "BINARY" section-binary SP (nstring / literal8) / …
/// msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
/// fetch-mod-resp = "MODSEQ" SP "(" permsg-modsequence ")"          ; RFC 7162
/// ```
/// - SeeAlso: RFC 3501 §7.4.2, RFC 3516, RFC 7162 §3.1.4
extension IMAPResponseParser {
    /// One line of a FETCH response (the first after `* n FETCH (`, or one after a literal). A
    /// literal that ends it is a body to stream when a body section's name comes right before it,
    /// else it is held with the items around it, which are read once the response ends or its
    /// next body begins.
    mutating func fetchSegment(_ line: [UInt8]) throws {
        let (text, literal) = Self.splitLiteral(line)
        fetchDepth += Self.nesting(of: text)
        parts.append(.text(text))
        guard let size = literal else {
            endResponse()
            try readFetchItems(bodyLiteral: nil)
            return
        }
        if Self.endsWithBodySection(text, depth: fetchDepth) {
            try readFetchItems(bodyLiteral: size)
        } else {
            try setState(heldLiteral: size, fetch: true)
        }
    }

    /// Reads the items held so far and gives their events. With `bodyLiteral`, the held parts end
    /// with a body section's name whose literal, of that many bytes, is streamed next. A response
    /// that cannot be read and gave no event yet becomes `.unreadable`, when nothing of it is
    /// left unread; otherwise it is an error.
    private mutating func readFetchItems(bodyLiteral: Int?) throws {
        let all = parts
        parts = []
        var c = LineCursor(parts: all, maxNesting: limits.maxNesting)
        var events: [IMAPResponseEvent] = []
        do {
            try readItems(&c, bodyLiteral: bodyLiteral, into: &events)
        } catch let error as IMAPParseError {
            guard !fetchEventsGiven, bodyLiteral == nil, let sequence = fetchSequence else { throw error }
            endResponse()
            emit(.unreadable(UnreadableResponse(text: "* \(sequence) FETCH (" + Self.shown(all), problem: error.description,
                                                name: "FETCH", fetchSequence: sequence)))
            return
        }
        if !fetchEventsGiven, let sequence = fetchSequence {
            emit(.fetchBegan(sequence: sequence))
            fetchEventsGiven = true
        }
        emit(contentsOf: events)
        if let size = bodyLiteral { setState(fetchBody: size) }
    }

    private mutating func readItems(_ c: inout LineCursor, bodyLiteral: Int?, into events: inout [IMAPResponseEvent]) throws {
        while true {
            c.skipSpaces()
            if c.consume(UInt8(ascii: ")")) {
                if fetchGroups > 0 {
                    fetchGroups -= 1
                    continue
                }
                c.skipSpaces()
                guard c.atEnd, bodyLiteral == nil else { throw IMAPParseError.malformed("text after a FETCH response: \(c.debugText)") }
                events.append(.fetchEnded)
                return
            }
            if c.consume(UInt8(ascii: "(")) {
                // Domino wraps items in parentheses of their own: `(UID 7 (ENVELOPE (…)) …)`.
                fetchGroups += 1
                guard fetchGroups <= limits.maxNesting else { throw IMAPParseError.limitExceeded("nesting deeper than \(limits.maxNesting)") }
                continue
            }
            if c.atEnd {
                throw IMAPParseError.malformed("a FETCH response that stops without ')'")
            }
            let name = try fetchItemName(&c)
            c.skipSpaces()
            if Self.isBodySection(name) {
                if c.atEnd, let size = bodyLiteral {
                    guard size <= limits.maxBodySize else {
                        throw IMAPParseError.limitExceeded("a message of \(size) bytes (the limit is \(limits.maxBodySize))")
                    }
                    events.append(.fetchBodyBegan(section: name, size: size))
                    return
                }
                try readHeldBody(name, &c, into: &events)
                continue
            }
            events.append(.fetchAttribute(try Self.fetchValue(name: name, &c)))
        }
    }

    /// A body section whose value is here already: a quoted string or a held literal (small by
    /// nature), or no content at all (`NIL`, or nothing before the `)`, as Yandex sends it).
    private func readHeldBody(_ name: String, _ c: inout LineCursor, into events: inout [IMAPResponseEvent]) throws {
        let value: [UInt8]
        if let held = c.literal() {
            value = held
        } else if c.peek == UInt8(ascii: ")") || c.atEnd {
            events.append(.fetchBodyNil(section: name))
            return
        } else if c.peekWord("NIL") {
            _ = try c.atom()
            events.append(.fetchBodyNil(section: name))
            return
        } else {
            value = try c.quoted()
        }
        events.append(.fetchBodyBegan(section: name, size: value.count))
        if !value.isEmpty { events.append(.fetchBodyBytes(ByteBuffer(bytes: value))) }
        events.append(.fetchBodyEnded)
    }

    /// `UID`, `FLAGS`, `BODY[]`, `BODY[HEADER.FIELDS (SUBJECT)]<0>`, `BINARY[1.2]`…
    private func fetchItemName(_ c: inout LineCursor) throws -> String {
        var name = try c.atom()
        if c.consume(UInt8(ascii: "[")) {
            var depth = 0
            var section = ""
            while true {
                guard let b = c.peek else { throw IMAPParseError.malformed("unterminated section in \(c.debugText)") }
                _ = c.consume(b)
                if b == UInt8(ascii: "(") { depth += 1 }
                if b == UInt8(ascii: ")") { depth -= 1 }
                if b == UInt8(ascii: "]") && depth == 0 { break }
                section.unicodeScalars.append(Unicode.Scalar(b))
            }
            name += "[" + section + "]"
            if c.consume(UInt8(ascii: "<")) {
                name += "<" + (try c.until(UInt8(ascii: ">"))) + ">"
                _ = c.consume(UInt8(ascii: ">"))
            }
        }
        return name.uppercased()
    }

    static func isBodySection(_ name: String) -> Bool {
        name.hasPrefix("BODY[") || name.hasPrefix("BINARY[") || name == "RFC822" || name == "RFC822.TEXT"
            || name == "RFC822.HEADER"
    }

    /// Whether `text`, a FETCH line up to a literal, ends with a body section's name (`BODY[]`,
    /// `BINARY[1]<0>`, `RFC822` among the items), so the literal is a message body to stream.
    static func endsWithBodySection(_ text: [UInt8], depth: Int) -> Bool {
        var end = text.count
        while end > 0, text[end - 1] == 0x20 { end -= 1 }
        guard end > 0 else { return false }
        if text[end - 1] == UInt8(ascii: ">") {
            guard let open = text[..<end].lastIndex(of: UInt8(ascii: "<")) else { return false }
            end = open
        }
        func word(endingAt e: Int) -> (String, Int) {
            var s = e
            while s > 0, LineCursor.isAtomChar(text[s - 1]) { s -= 1 }
            return (String(decoding: text[s..<e], as: UTF8.self).uppercased(), s)
        }
        func startsItem(_ s: Int) -> Bool { s == 0 || text[s - 1] == 0x20 || text[s - 1] == UInt8(ascii: "(") }
        if end > 0, text[end - 1] == UInt8(ascii: "]") {
            // A section holds no brackets: the last `[` opens it.
            guard let open = text[..<(end - 1)].lastIndex(of: UInt8(ascii: "[")) else { return false }
            let (w, s) = word(endingAt: open)
            return (w == "BODY" || w == "BINARY") && startsItem(s)
        }
        // A bare RFC822 only among the items: inside a list it would be a label or a string.
        let (w, s) = word(endingAt: end)
        return (w == "RFC822" || w == "RFC822.TEXT" || w == "RFC822.HEADER") && depth == 1 && startsItem(s)
    }

    /// How far `text` opens parentheses, outside quoted strings.
    static func nesting(of text: [UInt8]) -> Int {
        var depth = 0
        var quoted = false
        var escaped = false
        for b in text {
            if quoted {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { quoted = false }
            } else if b == UInt8(ascii: "\"") {
                quoted = true
            } else if b == UInt8(ascii: "(") {
                depth += 1
            } else if b == UInt8(ascii: ")") {
                depth -= 1
            }
        }
        return depth
    }

    static func fetchValue(name: String, _ c: inout LineCursor) throws -> FetchAttribute {
        switch name {
        case "UID": return .uid(try c.number32())
        case "RFC822.SIZE":
            // A size no Int holds is no size: an error, never a trap.
            let n = try c.number()
            guard n <= UInt64(Int.max) else { throw IMAPParseError.malformed("RFC822.SIZE \(n) is too large") }
            return .rfc822Size(Int(n))
        case "FLAGS": return .flags(try c.atomList())
        case "INTERNALDATE":
            guard let date = try c.nstring() else { return .other(name: name, value: "NIL") }
            return .internalDate(String(decoding: date, as: UTF8.self))
        case "MODSEQ":
            try c.expect(UInt8(ascii: "("))
            c.skipSpaces()
            if c.consume(UInt8(ascii: "-")) {
                // Zoho's `MODSEQ (-1)`: no mod-sequence, kept as sent.
                let n = try c.number()
                c.skipSpaces()
                try c.expect(UInt8(ascii: ")"))
                return .other(name: name, value: "(-\(n))")
            }
            let n = try c.number()
            c.skipSpaces()
            try c.expect(UInt8(ascii: ")"))
            return .modSeq(n)
        case "X-GM-MSGID": return .gmailMessageID(try c.number())
        default:
            if c.peek == UInt8(ascii: ")") || c.atEnd { return .other(name: name, value: "") }
            return .other(name: name, value: try c.anyValue())
        }
    }
}
