import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the server sends on a POP3 connection, one event at a time.
/// - SeeAlso: RFC 1939 §3, RFC 2449 (CAPA, response codes), RFC 3206 (SYS, AUTH codes)
public enum POP3Event: Sendable, Equatable {
    /// `+OK text`
    case ok(String)
    /// `-ERR [CODE] text`
    case err(code: String?, text: String)
    /// `+ base64`: a SASL challenge during AUTH.
    case challenge(String)
    /// One line of a multi-line listing (CAPA, LIST, UIDL), dot-unstuffed, without its line end.
    case line(POP3Line)
    /// Bytes of a message (RETR, TOP), dot-unstuffed, line ends as sent. Valid until the next call.
    case bodyBytes(ByteBuffer)
    /// The `.` that ends a multi-line response.
    case end
}

/// An incremental parser for the server side of POP3. POP3 replies do not say whether more lines
/// follow; the client knows from its command, so it tells the parser what to expect next.
///
/// ```
/// single-line = ("+OK" / "-ERR") [SP text] CRLF
/// multi-line  = "+OK" [SP text] CRLF *(line CRLF) "." CRLF  ; lines starting with "." get one more
/// ```
/// Message bodies are streamed as slices of the input with the stuffed dots removed, across chunk
/// boundaries; nothing is held but the few bytes that decide whether a line ends the message.
public struct POP3ResponseParser {
    public struct Limits: Sendable {
        public var maxLineLength: Int
        public var maxBodySize: Int

        public init(maxLineLength: Int = 8_192, maxBodySize: Int = 2 << 30) {
            self.maxLineLength = maxLineLength
            self.maxBodySize = maxBodySize
        }
    }

    /// What the next response is.
    public enum Expectation: Sendable, Equatable {
        /// `+OK`/`-ERR` and nothing more (USER, PASS, DELE, QUIT, STAT, LIST n, UIDL n…).
        case single
        /// `+OK` then text lines up to `.` (CAPA, LIST, UIDL).
        case lines
        /// `+OK` then a message up to `.` (RETR, TOP).
        case body
        /// `+ challenge` or a final `+OK`/`-ERR` (AUTH).
        case sasl
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case lineTooLong(Int)
        case bodyTooLarge(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case let .lineTooLong(n): return "a server line longer than \(n) bytes"
            case let .bodyTooLarge(n): return "a message larger than \(n) bytes"
            case let .malformed(s): return "malformed server response: \(s)"
            }
        }
    }

    private enum State {
        case status(Expectation)
        case lines
        /// In a body: at the start of a line or not, and how many bytes so far.
        case body(atLineStart: Bool, size: Int)
        case idle
    }

    public let limits: Limits
    private var state = State.idle

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Says what the next response will be (after sending a command, or for the greeting).
    public mutating func expect(_ expectation: Expectation) {
        state = .status(expectation)
    }

    /// The next event, or nil when more bytes are needed (nothing is consumed then).
    public mutating func next(_ buffer: inout ByteBuffer) throws -> POP3Event? {
        switch state {
        case .idle:
            if buffer.readableBytes > 0 {
                throw ParseError.malformed("unexpected data from the server: \(String(decoding: buffer.readableBytesView.prefix(60), as: UTF8.self))")
            }
            return nil
        case let .status(expectation):
            guard let line = try readLine(&buffer) else { return nil }
            if line.hasPrefix("+OK") {
                let text = String(line.dropFirst(3).drop { $0 == " " })
                switch expectation {
                case .single, .sasl: state = .idle
                case .lines: state = .lines
                case .body: state = .body(atLineStart: true, size: 0)
                }
                return .ok(text)
            }
            if line.hasPrefix("-ERR") {
                state = .idle
                var text = Substring(line.dropFirst(4).drop { $0 == " " })
                var code: String?
                if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                    code = String(text[text.index(after: text.startIndex)..<close])
                    text = text[text.index(after: close)...].drop { $0 == " " }
                }
                return .err(code: code, text: String(text))
            }
            if expectation == .sasl, line.hasPrefix("+") {
                state = .idle
                return .challenge(String(line.dropFirst().drop { $0 == " " }))
            }
            throw ParseError.malformed("expected +OK or -ERR, got '\(line.prefix(60))'")
        case .lines:
            guard let line = try readLineBytes(&buffer) else { return nil }
            if line == [UInt8(ascii: ".")] {
                state = .idle
                return .end
            }
            return .line(POP3Line(bytes: line.first == UInt8(ascii: ".") ? Array(line.dropFirst()) : line))
        case let .body(atLineStart, size):
            return try body(&buffer, atLineStart: atLineStart, size: size)
        }
    }

    private mutating func body(_ buffer: inout ByteBuffer, atLineStart: Bool, size: Int) throws -> POP3Event? {
        let view = buffer.readableBytesView
        guard let first = view.first else { return nil }
        if atLineStart && first == UInt8(ascii: ".") {
            // ".\r\n" or ".\n" ends the message; ".." or ".x" is a stuffed dot: drop it.
            guard view.count >= 2 else { return nil }
            let second = view[view.startIndex + 1]
            if second == UInt8(ascii: "\n") {
                buffer.moveReaderIndex(forwardBy: 2)
                state = .idle
                return .end
            }
            if second == UInt8(ascii: "\r") {
                guard view.count >= 3 else { return nil }
                if view[view.startIndex + 2] == UInt8(ascii: "\n") {
                    buffer.moveReaderIndex(forwardBy: 3)
                    state = .idle
                    return .end
                }
            }
            buffer.moveReaderIndex(forwardBy: 1)
            state = .body(atLineStart: false, size: size)
            return try body(&buffer, atLineStart: false, size: size)
        }
        // Every line up to the next one that starts with a dot (memchr from LF to LF), or all that
        // has arrived: one event per read, not one per line.
        let length: Int
        let endsLine: Bool
        let dotLine: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return nil }
            var i = 0
            while i < bytes.count - 1, let hit = memchr(base + i, 0x0A, bytes.count - 1 - i) {
                let lf = base.distance(to: UnsafeRawPointer(hit))
                if bytes[lf + 1] == UInt8(ascii: ".") { return lf }
                i = lf + 1
            }
            return nil
        }
        if let dotLine {
            length = dotLine + 1
            endsLine = true
        } else {
            length = view.count
            endsLine = view.last == UInt8(ascii: "\n")
        }
        let total = size + length
        guard total <= limits.maxBodySize else { throw ParseError.bodyTooLarge(limits.maxBodySize) }
        let slice = buffer.readSlice(length: length)!
        state = .body(atLineStart: endsLine, size: total)
        return .bodyBytes(slice)
    }

    private func readLine(_ buffer: inout ByteBuffer) throws -> String? {
        try readLineBytes(&buffer).map { String(decoding: $0, as: UTF8.self) }
    }

    private func readLineBytes(_ buffer: inout ByteBuffer) throws -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxLineLength { throw ParseError.lineTooLong(limits.maxLineLength) }
            return nil
        }
        let length = lf - view.startIndex
        if length > limits.maxLineLength { throw ParseError.lineTooLong(limits.maxLineLength) }
        var bytes = buffer.readBytes(length: length + 1)!
        bytes.removeLast()
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes
    }
}

/// The RFC 3206 and RFC 2449 response codes, classified.
public enum POP3ResponseCode: Sendable, Equatable {
    /// `[IN-USE]`: another session holds the maildrop; try later.
    case inUse
    /// `[LOGIN-DELAY]`: logging in again this soon is refused; try later.
    case loginDelay
    /// `[SYS/TEMP]`: a temporary server problem.
    case systemTemporary
    /// `[SYS/PERM]`: a permanent server problem.
    case systemPermanent
    /// `[AUTH]`: the credentials are wrong.
    case authentication
    case other(String)

    public init(_ code: String) {
        switch code.uppercased() {
        case "IN-USE": self = .inUse
        case "LOGIN-DELAY": self = .loginDelay
        case "SYS/TEMP": self = .systemTemporary
        case "SYS/PERM": self = .systemPermanent
        case "AUTH": self = .authentication
        default: self = .other(code)
        }
    }

    /// Whether waiting and trying again may help.
    public var isTemporary: Bool {
        switch self {
        case .inUse, .loginDelay, .systemTemporary: return true
        default: return false
        }
    }
}

/// The APOP timestamp of a greeting (`+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>`), if any.
/// - SeeAlso: RFC 1939 §7
public func apopTimestamp(inGreeting text: String) -> String? {
    guard let open = text.firstIndex(of: "<"), let close = text[open...].firstIndex(of: ">") else { return nil }
    let stamp = text[open...close]
    return stamp.contains("@") ? String(stamp) : nil
}
