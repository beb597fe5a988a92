import NIOCore

/// A server reply: `250-SIZE 52428800` … `250 HELP`, with the RFC 3463 enhanced status code when
/// the server gives one.
/// - SeeAlso: RFC 5321 §4.2, RFC 3463, RFC 2034
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    /// `5.7.1`, when present at the start of the first line.
    public var enhanced: String?
    /// Each line's text (after the code and separator), in order.
    public var lines: [String]

    public init(code: Int, enhanced: String? = nil, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    public var isPositive: Bool { code >= 200 && code < 400 }
    public var isTransient: Bool { code >= 400 && code < 500 }
    public var isPermanent: Bool { code >= 500 }
    public var text: String { lines.joined(separator: " ") }
    public var description: String { "\(code)\(enhanced.map { " \($0)" } ?? "") \(text)" }
}

/// An incremental reply parser: nil means "need more bytes" and consumes nothing.
///
/// ```
/// Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
/// ```
public struct SMTPReplyParser {
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case lineTooLong(Int)
        case tooManyLines(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case let .lineTooLong(n): return "a reply line longer than \(n) bytes"
            case let .tooManyLines(n): return "a reply of more than \(n) lines"
            case let .malformed(s): return "malformed server reply: \(s)"
            }
        }
    }

    public let maxLineLength: Int
    public let maxLines: Int

    public init(maxLineLength: Int = 8_192, maxLines: Int = 200) {
        self.maxLineLength = maxLineLength
        self.maxLines = maxLines
    }

    public func next(_ buffer: inout ByteBuffer) throws -> SMTPReply? {
        var view = buffer.readableBytesView[...]
        var consumed = 0
        var lines: [String] = []
        var code: Int?
        while true {
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > maxLineLength { throw ParseError.lineTooLong(maxLineLength) }
                return nil
            }
            var line = view[view.startIndex..<lf]
            if line.count > maxLineLength { throw ParseError.lineTooLong(maxLineLength) }
            consumed += line.count + 1
            view = view[(lf + 1)...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard line.count >= 3, let c = Int(String(decoding: line.prefix(3), as: UTF8.self)), (200...599).contains(c) else {
                throw ParseError.malformed(String(decoding: line.prefix(60), as: UTF8.self))
            }
            if let code, code != c { throw ParseError.malformed("reply code changed from \(code) to \(c) within one reply") }
            code = c
            let separator = line.count > 3 ? line[line.startIndex + 3] : UInt8(ascii: " ")
            guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
                throw ParseError.malformed(String(decoding: line.prefix(60), as: UTF8.self))
            }
            lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
            if lines.count > maxLines { throw ParseError.tooManyLines(maxLines) }
            if separator == UInt8(ascii: " ") { break }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        var enhanced: String?
        if let first = lines.first {
            // The code is the first word, after however many spaces the server put before it.
            let text = first.drop { $0 == " " }
            let word = text.prefix { $0 != " " }
            if Self.isEnhancedCode(word, of: code!) {
                enhanced = String(word)
                lines[0] = String(text.dropFirst(word.count).drop { $0 == " " })
            }
        }
        return SMTPReply(code: code!, enhanced: enhanced, lines: lines)
    }

    /// ```
    /// status-code = class "." subject "." detail
    /// class       = "2" / "4" / "5"
    /// subject     = 1*3digit
    /// detail      = 1*3digit
    /// ```
    /// Only when its class is the reply's first digit: a `210 4.4.2` is text, not a code that
    /// would say the opposite of the reply.
    /// - SeeAlso: RFC 3463 §2, RFC 2034 §4
    static func isEnhancedCode(_ word: Substring, of code: Int) -> Bool {
        let fields = word.split(separator: ".", omittingEmptySubsequences: false)
        guard fields.count == 3,
              fields.allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              fields[0].count == 1, let klass = Int(fields[0]), [2, 4, 5].contains(klass) else { return false }
        return klass == code / 100
    }
}

/// Dot-stuffs a message for DATA as it streams: a line that starts with `.` gets another, across
/// chunk boundaries. The input already has CRLF line ends (the spool normalised them).
/// - SeeAlso: RFC 5321 §4.5.2
public struct DotStuffer: Sendable {
    private var atLineStart = true
    /// Whether the last byte written was LF (so the terminator needs no CRLF of its own).
    public private(set) var endsWithLineEnd = true

    public init() {}

    public mutating func stuff(_ chunk: ByteBuffer) -> ByteBuffer {
        guard chunk.readableBytes > 0 else { return chunk }
        var out = ByteBuffer()
        out.reserveCapacity(chunk.readableBytes + 16)
        chunk.withUnsafeReadableBytes { bytes in
            var runStart = 0
            for (i, b) in bytes.enumerated() {
                if atLineStart && b == UInt8(ascii: ".") {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
                    out.writeInteger(UInt8(ascii: "."))
                    runStart = i
                }
                atLineStart = b == UInt8(ascii: "\n")
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
            endsWithLineEnd = bytes.last == UInt8(ascii: "\n")
        }
        return out
    }

    /// What ends DATA: `.CRLF`, preceded by a CRLF when the message did not end with one.
    public func terminator() -> ByteBuffer {
        ByteBuffer(string: endsWithLineEnd ? ".\r\n" : "\r\n.\r\n")
    }
}
