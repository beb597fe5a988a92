import NIOCore

/// An incremental parser of the server side of an IMAP connection. Feed it whatever arrived;
/// `next(_:)` returns the next event, or nil when it needs more bytes (leaving them in the buffer).
///
/// ```
/// response      = *(continue-req / response-data) response-done
/// continue-req  = "+" SP (resp-text / base64) CRLF
/// response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data /
///                 capability-data) CRLF
/// message-data  = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
/// literal       = "{" number ["+"] "}" CRLF *CHAR8
/// ```
/// Body sections (`BODY[]`, `BINARY[]`, `RFC822`) are streamed as slices of the input, never
/// collected; every other literal is held, up to `Limits.maxLiteralSize`.
/// - SeeAlso: RFC 3501 §7 and §9, RFC 9051
public struct IMAPResponseParser {
    public struct Limits: Sendable {
        /// The longest line (between literals) accepted.
        public var maxLineLength: Int
        /// The largest literal held in memory (a mailbox name, a header): not message bodies.
        public var maxLiteralSize: Int
        /// The largest message body accepted in a FETCH.
        public var maxBodySize: Int
        /// The deepest parenthesis nesting accepted.
        public var maxNesting: Int

        public init(maxLineLength: Int = 64 << 10, maxLiteralSize: Int = 1 << 20,
                    maxBodySize: Int = 2 << 30, maxNesting: Int = 32) {
            self.maxLineLength = maxLineLength
            self.maxLiteralSize = maxLiteralSize
            self.maxBodySize = maxBodySize
            self.maxNesting = maxNesting
        }
    }

    private enum State {
        case start
        /// A non-FETCH response with literals: the parts so far, and the literal to read next.
        case literal(parts: [LineCursor.Part], size: Int)
        /// A non-FETCH response: the text after a literal comes next.
        case continuation(parts: [LineCursor.Part])
        /// A FETCH body section: this many bytes still to stream.
        case fetchBody(remaining: Int)
        /// A FETCH: the rest of its attributes come on the next line segment.
        case fetchLine
        /// A FETCH attribute whose value is a (small) literal.
        case fetchLiteral(name: String, size: Int)
    }

    public let limits: Limits
    private var state = State.start
    private var pending: [IMAPResponseEvent] = []
    private var pendingHead = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> IMAPResponseEvent? {
        while true {
            if pendingHead < pending.count {
                let e = pending[pendingHead]
                pendingHead += 1
                if pendingHead == pending.count { pending.removeAll(keepingCapacity: true); pendingHead = 0 }
                return e
            }
            switch state {
            case .start:
                guard let line = try readLine(&buffer) else { return nil }
                try startResponse(line)

            case let .literal(parts, size):
                guard buffer.readableBytes >= size else { return nil }
                let bytes = buffer.readBytes(length: size)!
                state = .continuation(parts: parts + [.literal(bytes)])

            case let .continuation(parts):
                guard let line = try readLine(&buffer) else { return nil }
                let (text, literal) = try splitLiteral(line)
                let all = parts + [.text(text)]
                if let literal {
                    try checkLiteral(literal)
                    state = .literal(parts: all, size: literal)
                } else {
                    state = .start
                    pending.append(try Self.parseResponse(LineCursor(parts: all, maxNesting: limits.maxNesting)))
                }

            case let .fetchBody(remaining):
                if remaining == 0 {
                    state = .fetchLine
                    return .fetchBodyEnded
                }
                guard buffer.readableBytes > 0 else { return nil }
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = .fetchBody(remaining: remaining - n)
                return .fetchBodyBytes(slice)

            case .fetchLine:
                guard let line = try readLine(&buffer) else { return nil }
                try fetchSegment(line)

            case let .fetchLiteral(name, size):
                guard buffer.readableBytes >= size else { return nil }
                let bytes = buffer.readBytes(length: size)!
                pending.append(.fetchAttribute(Self.attribute(name: name, value: String(decoding: bytes, as: UTF8.self))))
                state = .fetchLine
            }
        }
    }

    // MARK: lines

    /// One line without its CRLF, or nil when it has not all arrived.
    private func readLine(_ buffer: inout ByteBuffer) throws -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxLineLength {
                throw IMAPParseError.limitExceeded("a line longer than \(limits.maxLineLength) bytes")
            }
            return nil
        }
        let length = lf - view.startIndex
        if length > limits.maxLineLength {
            throw IMAPParseError.limitExceeded("a line longer than \(limits.maxLineLength) bytes")
        }
        var line = buffer.readBytes(length: length + 1)!
        line.removeLast()
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }

    /// Splits `text {n}` into the text and n, when a line ends with a literal's announcement.
    private func splitLiteral(_ line: [UInt8]) throws -> ([UInt8], Int?) {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return (line, nil) }
        var digits = line[(open + 1)..<(line.count - 1)]
        if digits.last == UInt8(ascii: "+") || digits.last == UInt8(ascii: "-") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return (line, nil) }
        let n = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (Array(line[..<open]), n)
    }

    private func checkLiteral(_ size: Int) throws {
        if size > limits.maxLiteralSize {
            throw IMAPParseError.limitExceeded("a literal of \(size) bytes (the limit is \(limits.maxLiteralSize))")
        }
    }

    private mutating func startResponse(_ line: [UInt8]) throws {
        if line.first == UInt8(ascii: "+") {
            var text = line.dropFirst()
            if text.first == 0x20 { text = text.dropFirst() }
            pending.append(.continuation(String(decoding: text, as: UTF8.self)))
            return
        }
        if let (sequence, rest) = Self.fetchPrefix(line) {
            pending.append(.fetchBegan(sequence: sequence))
            try fetchSegment(rest)
            return
        }
        let (text, literal) = try splitLiteral(line)
        if let literal {
            try checkLiteral(literal)
            state = .literal(parts: [.text(text)], size: literal)
            return
        }
        pending.append(try Self.parseResponse(LineCursor(text, maxNesting: limits.maxNesting)))
    }

    /// `* 12 FETCH (` → (12, the bytes after the parenthesis).
    private static func fetchPrefix(_ line: [UInt8]) -> (UInt32, [UInt8])? {
        guard line.count > 10, line[0] == UInt8(ascii: "*"), line[1] == 0x20 else { return nil }
        var i = 2
        var n: UInt64 = 0
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39, n <= UInt32.max {
            n = n * 10 + UInt64(line[i] - 0x30)
            i += 1
        }
        guard i > 2, n <= UInt32.max, i + 8 <= line.count else { return nil }
        let word = line[i..<(i + 8)].map { $0 | 0x20 }
        guard word == Array(" fetch (".utf8) else { return nil }
        return (UInt32(n), Array(line[(i + 8)...]))
    }

    // MARK: FETCH

    /// ```
    /// msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic / msg-att-static)) ")"
    /// msg-att-static = "INTERNALDATE" SP date-time / "RFC822.SIZE" SP number / "UID" SP uniqueid /
    ///                  "BODY" section ["<" number ">"] SP nstring / "BINARY" section-binary SP (nstring / literal8) / …
    /// ```
    private mutating func fetchSegment(_ segment: [UInt8]) throws {
        let (text, literal) = try splitLiteral(segment)
        var c = LineCursor(text, maxNesting: limits.maxNesting)
        while true {
            c.skipSpaces()
            if c.consume(UInt8(ascii: ")")) {
                c.skipSpaces()
                guard c.atEnd, literal == nil else { throw IMAPParseError.malformed("text after a FETCH response: \(c.debugText)") }
                pending.append(.fetchEnded)
                state = .start
                return
            }
            if c.atEnd {
                throw IMAPParseError.malformed("a FETCH response that stops without ')'")
            }
            let name = try fetchItemName(&c)
            c.skipSpaces()
            let isBody = Self.isBodySection(name)
            if c.atEnd {
                guard let size = literal else { throw IMAPParseError.malformed("FETCH item \(name) without a value") }
                if isBody {
                    guard size <= limits.maxBodySize else {
                        throw IMAPParseError.limitExceeded("a message of \(size) bytes (the limit is \(limits.maxBodySize))")
                    }
                    pending.append(.fetchBodyBegan(section: name, size: size))
                    state = .fetchBody(remaining: size)
                } else {
                    try checkLiteral(size)
                    state = .fetchLiteral(name: name, size: size)
                }
                return
            }
            if isBody {
                // A body sent as a quoted string or NIL: small by nature.
                let value = try c.nstring() ?? []
                pending.append(.fetchBodyBegan(section: name, size: value.count))
                if !value.isEmpty { pending.append(.fetchBodyBytes(ByteBuffer(bytes: value))) }
                pending.append(.fetchBodyEnded)
                continue
            }
            pending.append(.fetchAttribute(try Self.fetchValue(name: name, &c)))
        }
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

    private static func isBodySection(_ name: String) -> Bool {
        name.hasPrefix("BODY[") || name.hasPrefix("BINARY[") || name == "RFC822" || name == "RFC822.TEXT"
            || name == "RFC822.HEADER"
    }

    private static func fetchValue(name: String, _ c: inout LineCursor) throws -> FetchAttribute {
        switch name {
        case "UID": return .uid(try c.number32())
        case "RFC822.SIZE": return .rfc822Size(Int(try c.number()))
        case "FLAGS": return .flags(try c.atomList())
        case "INTERNALDATE": return .internalDate(String(decoding: try c.string(), as: UTF8.self))
        case "MODSEQ":
            try c.expect(UInt8(ascii: "("))
            let n = try c.number()
            try c.expect(UInt8(ascii: ")"))
            return .modSeq(n)
        case "X-GM-MSGID": return .gmailMessageID(try c.number())
        default: return .other(name: name, value: try c.anyValue())
        }
    }

    private static func attribute(name: String, value: String) -> FetchAttribute {
        switch name {
        case "INTERNALDATE": return .internalDate(value)
        default: return .other(name: name, value: value)
        }
    }

    // MARK: everything but FETCH

    /// ```
    /// response-tagged = tag SP resp-cond-state CRLF
    /// resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
    /// resp-text       = ["[" resp-text-code "]" SP] text
    /// ```
    static func parseResponse(_ cursor: LineCursor) throws -> IMAPResponseEvent {
        var c = cursor
        if c.consume(UInt8(ascii: "*")) {
            try c.expect(0x20)
            return .untagged(try parseUntagged(&c))
        }
        let tag = try c.atom()
        try c.expect(0x20)
        let word = try c.atom().uppercased()
        guard let status = ResponseStatus(rawValue: word), status == .ok || status == .no || status == .bad else {
            throw IMAPParseError.malformed("a tagged response with status '\(word)'")
        }
        let (code, text) = try parseRespText(&c)
        return .tagged(TaggedResponse(tag: tag, status: status, code: code, text: text))
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
        if let p = c.peek, p >= 0x30, p <= 0x39 {
            let n = try c.number32()
            try c.expect(0x20)
            let word = try c.atom().uppercased()
            switch word {
            case "EXISTS": return .exists(n)
            case "RECENT": return .recent(n)
            case "EXPUNGE": return .expunge(n)
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
            c.skipSpaces()
            let mailbox = String(decoding: try c.astring(), as: UTF8.self)
            c.skipSpaces()
            try c.expect(UInt8(ascii: "("))
            var items: [String: UInt64] = [:]
            while true {
                c.skipSpaces()
                if c.consume(UInt8(ascii: ")")) { break }
                let name = try c.atom().uppercased()
                c.skipSpaces()
                items[name] = try c.number()
            }
            return .mailboxStatus(mailbox: mailbox, items: items)
        case "SEARCH":
            var uids: [UInt32] = []
            while true {
                c.skipSpaces()
                guard let p = c.peek, p >= 0x30, p <= 0x39 else { break }
                uids.append(try c.number32())
            }
            return .search(uids)
        case "ESEARCH":
            c.skipSpaces()
            var tag: String?
            if c.consume(UInt8(ascii: "(")) {
                c.skipSpaces()
                _ = try c.atom()  // TAG
                c.skipSpaces()
                tag = String(decoding: try c.string(), as: UTF8.self)
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
                items[name] = try c.anyValue()
            }
            return .esearch(tag: tag, uid: uid, items: items)
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
    /// mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended]
    /// ```
    static func parseList(_ c: inout LineCursor) throws -> ListEntry {
        c.skipSpaces()
        let attributes = try c.atomList()
        c.skipSpaces()
        var delimiter: Character?
        if c.peekWord("NIL") {
            _ = try c.atom()
        } else {
            let d = try c.quoted()
            guard d.count == 1 else { throw IMAPParseError.malformed("a hierarchy delimiter of \(d.count) characters") }
            delimiter = Character(Unicode.Scalar(d[0]))
        }
        c.skipSpaces()
        let name = String(decoding: try c.astring(), as: UTF8.self)
        return ListEntry(attributes: attributes, delimiter: delimiter, name: name)
    }
}
