import NIOCore

/// An incremental parser of the server side of an IMAP connection. Feed it whatever arrived;
/// `next(_:)` returns the next event, or nil when it needs more bytes.
///
/// ```
/// response      = *(continue-req / response-data) response-done
/// continue-req  = "+" SP (resp-text / base64) CRLF
/// response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data /
///                 capability-data) CRLF
/// message-data  = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
/// literal       = "{" number ["+"] "}" CRLF *CHAR8
/// literal8      = "~{" number ["+"] "}" CRLF *OCTET        ; RFC 3516
/// ```
/// Body sections (`BODY[]`, `BINARY[]`, `RFC822`) are streamed as slices of the input, never
/// collected; every other literal is held, up to `Limits.maxLiteralSize` each and
/// `Limits.maxResponseSize` for one response.
///
/// Liberal where a fetcher loses nothing by it: unknown STATUS and FETCH items are passed over,
/// and an untagged response that cannot be read becomes `.unreadable` and the stream goes on.
/// Tagged responses, and FETCH responses once any of their events was given, stay strict.
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
        /// The most bytes one response may have held at once (its lines and the literals that are
        /// not streamed), so many literals in one response cannot add up without bound.
        public var maxResponseSize: Int

        public init(maxLineLength: Int = 64 << 10, maxLiteralSize: Int = 1 << 20,
                    maxBodySize: Int = 2 << 30, maxNesting: Int = 32, maxResponseSize: Int = 4 << 20) {
            self.maxLineLength = maxLineLength
            self.maxLiteralSize = maxLiteralSize
            self.maxBodySize = maxBodySize
            self.maxNesting = maxNesting
            self.maxResponseSize = maxResponseSize
        }
    }

    private enum State {
        case start
        /// A literal of `size` bytes to hold, then the rest of the response (a FETCH or not).
        case heldLiteral(size: Int, fetch: Bool)
        /// The line after a literal or a body, of a FETCH response or not.
        case nextSegment(fetch: Bool)
        /// A FETCH body section: this many bytes still to stream.
        case fetchBody(remaining: Int)
    }

    public let limits: Limits
    private var state = State.start
    private var pending: [IMAPResponseEvent] = []
    private var pendingHead = 0
    /// The response read so far and not yet parsed: its lines and held literals. A stored
    /// property, not a payload of `state`, so adding to it never copies it.
    var parts: [LineCursor.Part] = []
    /// The bytes the response under way has held, against `Limits.maxResponseSize`.
    private var held = 0
    /// The FETCH response under way: its message number, whether any of its events was given,
    /// its nesting outside quoted strings, and the parentheses Domino puts around items.
    var fetchSequence: UInt32?
    var fetchEventsGiven = false
    var fetchDepth = 0
    var fetchGroups = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The next event, or nil when more bytes are needed. A line that has not ended is left in
    /// the buffer; complete lines and literals are taken from it as they arrive and held by the
    /// parser (a body streams, so the parser must own what it has read), so feed the same
    /// parser the bytes that follow, never the same bytes again.
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

            case let .heldLiteral(size, fetch):
                guard buffer.readableBytes >= size else { return nil }
                parts.append(.literal(buffer.readBytes(length: size)!))
                state = .nextSegment(fetch: fetch)

            case let .nextSegment(fetch):
                guard let line = try readLine(&buffer) else { return nil }
                try hold(line.count)
                if fetch {
                    try fetchSegment(line)
                } else {
                    try responseSegment(line, literalsAllowed: true)
                }

            case let .fetchBody(remaining):
                if remaining == 0 {
                    state = .nextSegment(fetch: true)
                    return .fetchBodyEnded
                }
                guard buffer.readableBytes > 0 else { return nil }
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = .fetchBody(remaining: remaining - n)
                return .fetchBodyBytes(slice)
            }
        }
    }

    mutating func emit(_ event: IMAPResponseEvent) {
        pending.append(event)
    }

    mutating func emit(contentsOf events: [IMAPResponseEvent]) {
        pending.append(contentsOf: events)
    }

    mutating func setState(fetchBody size: Int) {
        state = .fetchBody(remaining: size)
    }

    mutating func setState(heldLiteral size: Int, fetch: Bool) throws {
        try checkLiteral(size)
        try hold(size)
        state = .heldLiteral(size: size, fetch: fetch)
    }

    mutating func endResponse() {
        state = .start
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

    /// Counts bytes the response under way holds; past the limit the connection cannot go on, as
    /// the rest of the response is unread.
    private mutating func hold(_ bytes: Int) throws {
        held += bytes + 2
        if held > limits.maxResponseSize {
            throw IMAPParseError.limitExceeded("a response holding more than \(limits.maxResponseSize) bytes")
        }
    }

    /// Splits `text {n}` (or `~{n}`, a literal8) into the text and n, when a line ends with a
    /// literal's announcement.
    static func splitLiteral(_ line: [UInt8]) -> ([UInt8], Int?) {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return (line, nil) }
        var digits = line[(open + 1)..<(line.count - 1)]
        if digits.last == UInt8(ascii: "+") || digits.last == UInt8(ascii: "-") { digits = digits.dropLast() }
        // Twelve digits at most: a size that fits an Int, refused by the limits long before.
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return (line, nil) }
        let n = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        let textEnd = open > 0 && line[open - 1] == UInt8(ascii: "~") ? open - 1 : open
        return (Array(line[..<textEnd]), n)
    }

    private func checkLiteral(_ size: Int) throws {
        if size > limits.maxLiteralSize {
            throw IMAPParseError.limitExceeded("a literal of \(size) bytes (the limit is \(limits.maxLiteralSize))")
        }
    }

    private mutating func startResponse(_ line: [UInt8]) throws {
        parts.removeAll()
        held = 0
        fetchSequence = nil
        fetchEventsGiven = false
        fetchDepth = 0
        fetchGroups = 0
        try hold(line.count)
        if line.first == UInt8(ascii: "+") {
            var text = line.dropFirst()
            if text.first == 0x20 { text = text.dropFirst() }
            emit(.continuation(String(decoding: text, as: UTF8.self)))
            return
        }
        if let (sequence, rest) = Self.fetchPrefix(line) {
            fetchSequence = sequence
            fetchDepth = 1
            try fetchSegment(rest)
            return
        }
        try responseSegment(line, literalsAllowed: Self.mayAnnounceLiteral(line))
    }

    /// One line of a response other than FETCH: held until a line without a literal ends it.
    private mutating func responseSegment(_ line: [UInt8], literalsAllowed: Bool) throws {
        let (text, literal): ([UInt8], Int?) = literalsAllowed ? Self.splitLiteral(line) : (line, nil)
        parts.append(.text(text))
        if let literal {
            try setState(heldLiteral: literal, fetch: false)
            return
        }
        state = .start
        let all = parts
        parts = []
        do {
            emit(try Self.parseResponse(LineCursor(parts: all, maxNesting: limits.maxNesting)))
        } catch let error as IMAPParseError {
            guard all.first.map(Self.isUntagged) == true else { throw error }
            emit(.unreadable(UnreadableResponse(text: Self.shown(all), problem: error.description,
                                                name: Self.responseName(all), fetchSequence: Self.fetchNumber(all))))
        }
    }

    /// Whether a literal may end this line: resp-text (tagged responses, `* OK/NO/BAD/BYE/PREAUTH`,
    /// `* [code]`) never carries one, nor do CAPABILITY, FLAGS, SEARCH and the numbered responses,
    /// so `a7 NO … Archive {2024}` ends there and is not waiting for 2,024 bytes.
    static func mayAnnounceLiteral(_ line: [UInt8]) -> Bool {
        guard line.first == UInt8(ascii: "*") else { return false }
        var i = 1
        while i < line.count, line[i] == 0x20 { i += 1 }
        guard i < line.count, line[i] != UInt8(ascii: "["), !(line[i] >= 0x30 && line[i] <= 0x39) else { return false }
        let start = i
        while i < line.count, LineCursor.isAtomChar(line[i]) { i += 1 }
        let word = String(decoding: line[start..<i], as: UTF8.self).uppercased()
        return !["OK", "NO", "BAD", "BYE", "PREAUTH", "CAPABILITY", "ENABLED", "FLAGS", "SEARCH"].contains(word)
    }

    static func isUntagged(_ part: LineCursor.Part) -> Bool {
        if case let .text(b) = part { return b.first == UInt8(ascii: "*") }
        return false
    }

    /// `* 12 FETCH (` → (12, the bytes after the parenthesis); spaces and case as servers vary them.
    static func fetchPrefix(_ line: [UInt8]) -> (UInt32, [UInt8])? {
        guard let (n, i) = fetchNumberAndEnd(line) else { return nil }
        var j = i
        while j < line.count, line[j] == 0x20 { j += 1 }
        guard j < line.count, line[j] == UInt8(ascii: "(") else { return nil }
        return (n, Array(line[(j + 1)...]))
    }

    /// The message number of a line that starts `* 12 FETCH`, with where the word ends.
    private static func fetchNumberAndEnd(_ line: [UInt8]) -> (UInt32, Int)? {
        guard line.first == UInt8(ascii: "*") else { return nil }
        var i = 1
        while i < line.count, line[i] == 0x20 { i += 1 }
        let digitsStart = i
        var n: UInt64 = 0
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39, n <= UInt32.max {
            n = n * 10 + UInt64(line[i] - 0x30)
            i += 1
        }
        guard i > digitsStart, n <= UInt32.max, i < line.count, line[i] == 0x20 else { return nil }
        while i < line.count, line[i] == 0x20 { i += 1 }
        guard i + 5 <= line.count, line[i..<(i + 5)].map({ $0 | 0x20 }) == Array("fetch".utf8),
              i + 5 == line.count || !LineCursor.isAtomChar(line[i + 5]) else { return nil }
        return (UInt32(n), i + 5)
    }

    static func fetchNumber(_ parts: [LineCursor.Part]) -> UInt32? {
        guard case let .text(b)? = parts.first else { return nil }
        return fetchNumberAndEnd(b)?.0
    }

    /// The name of an untagged response, after its number if it has one: `* 3 EXISTS` → EXISTS.
    static func responseName(_ parts: [LineCursor.Part]) -> String? {
        guard case let .text(b)? = parts.first, b.first == UInt8(ascii: "*") else { return nil }
        var i = 1
        while i < b.count, b[i] == 0x20 { i += 1 }
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
        while i < b.count, b[i] == 0x20 { i += 1 }
        let start = i
        while i < b.count, LineCursor.isAtomChar(b[i]) { i += 1 }
        return i > start ? String(decoding: b[start..<i], as: UTF8.self).uppercased() : nil
    }

    /// A response for the log: its text, each literal as its size, at most a few hundred bytes.
    static func shown(_ parts: [LineCursor.Part]) -> String {
        var out: [UInt8] = []
        for part in parts {
            switch part {
            case let .text(b): out += b.prefix(max(0, 300 - out.count))
            case let .literal(b): out += Array("{\(b.count)}".utf8)
            }
            if out.count >= 300 { return String(decoding: out, as: UTF8.self) + "…" }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
