/// Every response but FETCH, read once all its lines and literals are in.
extension IMAPResponseParser {
    /// ```
    /// response-tagged = tag SP resp-cond-state CRLF
    /// resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
    /// resp-text       = ["[" resp-text-code "]" SP] text
    /// ```
    static func parseResponse(_ cursor: LineCursor) throws -> IMAPResponseEvent {
        var c = cursor
        if c.consume(UInt8(ascii: "*")) {
            try spaces(&c)
            return .untagged(try parseUntagged(&c))
        }
        let tag = try c.atom()
        try spaces(&c)
        let word = try c.atom().uppercased()
        guard let status = ResponseStatus(rawValue: word), status == .ok || status == .no || status == .bad else {
            throw IMAPParseError.malformed("a tagged response with status '\(word)'")
        }
        let (code, text) = try parseRespText(&c)
        return .tagged(TaggedResponse(tag: tag, status: status, code: code, text: text))
    }

    /// One space or more, where the grammar has one (servers send `*  OK`).
    private static func spaces(_ c: inout LineCursor) throws {
        try c.expect(0x20)
        c.skipSpaces()
    }

    static func parseRespText(_ c: inout LineCursor) throws -> (ResponseCode?, String) {
        c.skipSpaces()
        var code: ResponseCode?
        if c.consume(UInt8(ascii: "[")) {
            let inside = try c.until(UInt8(ascii: "]"))
            _ = c.consume(UInt8(ascii: "]"))
            let trimmed = inside.trimmingCharacters(in: " ")
            let name = trimmed.prefix { $0 != " " }
            let args = String(trimmed.dropFirst(name.count)).trimmingCharacters(in: " ")
            code = ResponseCode.make(name: String(name), arguments: args.isEmpty ? nil : args)
            c.skipSpaces()
        }
        return (code, c.rest())
    }

    static func parseUntagged(_ c: inout LineCursor) throws -> UntaggedResponse {
        if c.peek == UInt8(ascii: "[") {
            // `* [COPYUID 1 2 3]` without a status (Exchange, home.pl): read as the OK it means.
            let (code, text) = try parseRespText(&c)
            return .status(.ok, code: code, text: text)
        }
        if let p = c.peek, p >= 0x30, p <= 0x39 {
            let n = try c.number32()
            try spaces(&c)
            let word = try c.atom().uppercased()
            switch word {
            case "EXISTS": return .exists(n)
            case "RECENT": return .recent(n)
            case "EXPUNGE": return .expunge(n)
            case "FETCH": throw IMAPParseError.malformed("a FETCH response without its '('")
            default:
                c.skipSpaces()
                return .other("\(n) \(word)\(c.atEnd ? "" : " ")\(c.rest())")
            }
        }
        let word = try c.atom().uppercased()
        switch word {
        case "OK", "NO", "BAD", "PREAUTH", "BYE":
            let (code, text) = try parseRespText(&c)
            return .status(ResponseStatus(rawValue: word)!, code: code, text: text)
        case "CAPABILITY":
            return .capability(c.rest().split(separator: " ").map(String.init))
        case "ENABLED":
            return .enabled(c.rest().split(separator: " ").map(String.init))
        case "FLAGS":
            c.skipSpaces()
            return .flags(try c.atomList())
        case "LIST", "LSUB":
            let entry = try parseList(&c)
            return word == "LIST" ? .list(entry) : .lsub(entry)
        case "STATUS":
            return try parseStatus(&c)
        case "SEARCH":
            // mailbox-data =/ "SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]
            var uids: [UInt32] = []
            while true {
                c.skipSpaces()
                guard let p = c.peek, p >= 0x30, p <= 0x39 else { break }
                uids.append(try c.number32())
            }
            if c.peek == UInt8(ascii: "(") { _ = try c.anyValue() }
            c.skipSpaces()
            // A UID cut short is a wrong result, not a short one: deletions are judged by it.
            guard c.atEnd else { throw IMAPParseError.malformed("a SEARCH result holding \(c.debugText)") }
            return .search(uids)
        case "ESEARCH":
            return try parseESearch(&c)
        case "VANISHED":
            c.skipSpaces()
            var earlier = false
            if c.consume(UInt8(ascii: "(")) {
                earlier = try c.atom().uppercased() == "EARLIER"
                try c.expect(UInt8(ascii: ")"))
                c.skipSpaces()
            }
            let text = try c.atom()
            guard let set = UIDSet(text) else { throw IMAPParseError.malformed("bad UID set '\(text)' in VANISHED") }
            return .vanished(earlier: earlier, uids: set)
        default:
            c.skipSpaces()
            return .other(word + (c.atEnd ? "" : " " + c.rest()))
        }
    }

    /// ```
    /// mailbox-data =/ "STATUS" SP mailbox SP "(" [status-att-list] ")"
    /// status-att-list = status-att-val *(SP status-att-val)
    /// ```
    /// Items with a number are kept; any other value (`APPENDLIMIT NIL`, `MAILBOXID (…)`) is
    /// read and passed over, as no fetcher needs it.
    /// - SeeAlso: RFC 3501 §7.2.4, RFC 7889, RFC 8438, RFC 8474
    static func parseStatus(_ c: inout LineCursor) throws -> UntaggedResponse {
        c.skipSpaces()
        let mailbox = String(decoding: try c.astring(), as: UTF8.self)
        c.skipSpaces()
        try c.expect(UInt8(ascii: "("))
        var items: [String: UInt64] = [:]
        while true {
            c.skipSpaces()
            if c.consume(UInt8(ascii: ")")) { break }
            guard !c.atEnd else { throw IMAPParseError.malformed("a STATUS response that stops without ')'") }
            let name = try c.atom(allowBracket: true).uppercased()
            c.skipSpaces()
            if let p = c.peek, p >= 0x30, p <= 0x39 {
                items[name] = try c.number()
            } else {
                guard !c.atEnd, c.peek != UInt8(ascii: ")") else { throw IMAPParseError.malformed("STATUS item \(name) without a value") }
                _ = try c.anyValue()
            }
        }
        return .mailboxStatus(mailbox: mailbox, items: items)
    }

    /// ```
    /// esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
    /// ```
    /// Result sets stay text (`ALL 1:4294967294`): expanding them is the reader's choice.
    /// - SeeAlso: RFC 4731 §3.1
    static func parseESearch(_ c: inout LineCursor) throws -> UntaggedResponse {
        c.skipSpaces()
        var tag: String?
        if c.consume(UInt8(ascii: "(")) {
            c.skipSpaces()
            _ = try c.atom()  // TAG
            c.skipSpaces()
            tag = String(decoding: try c.string(), as: UTF8.self)
            c.skipSpaces()
            try c.expect(UInt8(ascii: ")"))
        }
        c.skipSpaces()
        var uid = false
        if c.peekWord("UID") { _ = try c.atom(); uid = true }
        var items: [String: String] = [:]
        while true {
            c.skipSpaces()
            if c.atEnd { break }
            let name = try c.atom().uppercased()
            c.skipSpaces()
            let value = try c.anyValue()
            if name == "ALL", UIDSet(value) == nil { throw IMAPParseError.malformed("an ESEARCH set '\(value.prefix(60))'") }
            items[name] = value
        }
        return .esearch(tag: tag, uid: uid, items: items)
    }

    /// ```
    /// mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended]
    /// ```
    /// Liberal in the delimiter (`NIL`, or `""` as some servers write none) and in an unquoted name
    /// (brackets, Exchange's tabs); whatever follows the name must be LIST-EXTENDED data, so a
    /// name is never cut short in silence.
    /// - SeeAlso: RFC 3501 §7.2.2, RFC 5258 §4
    static func parseList(_ c: inout LineCursor) throws -> ListEntry {
        c.skipSpaces()
        let attributes = try c.atomList()
        c.skipSpaces()
        var delimiter: Character?
        if c.peekWord("NIL") {
            _ = try c.atom()
        } else {
            let d = try c.quoted()
            guard d.count <= 1 else { throw IMAPParseError.malformed("a hierarchy delimiter of \(d.count) characters") }
            delimiter = d.first.map { Character(Unicode.Scalar($0)) }
        }
        c.skipSpaces()
        let name = String(decoding: try c.astring(allowTab: true), as: UTF8.self)
        c.skipSpaces()
        if !c.atEnd {
            guard c.peek == UInt8(ascii: "(") else { throw IMAPParseError.malformed("text after the mailbox name in \(c.debugText)") }
            _ = try c.anyValue()
            c.skipSpaces()
            guard c.atEnd else { throw IMAPParseError.malformed("text after a LIST response in \(c.debugText)") }
        }
        return ListEntry(attributes: attributes, delimiter: delimiter, name: name)
    }
}
