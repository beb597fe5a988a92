#if canImport(Glibc)
import Glibc
#endif

/// Splits an mbox byte stream into messages and undoes the `>From ` escaping, chunk by chunk, with
/// memory bounded by one separator line whatever the message or line length.
///
/// A separator is a `From ` line that follows an empty line (or starts the file) and passes
/// `MboxFromLine.isSeparator`. The empty line before a separator, and one at the end of the file,
/// belong to the mbox format, not to the message. A last message without a trailing newline ends at
/// the end of the file as it is.
/// - SeeAlso: RFC 4155; mboxrd as described by qmail's mbox(5)
public struct MboxScanner {
    public enum Event {
        /// A message starts; `offset` is where its separator line starts in the stream.
        case begin(fromLine: [UInt8], offset: Int64)
        /// The next bytes of the current message, unescaped. Valid only during the callback.
        case body(UnsafeRawBufferPointer)
        /// The message ends; `offset` is where its region (separator included) ends in the stream.
        case end(offset: Int64)
    }

    public enum ScanError: Error, Equatable {
        /// The stream does not start with a `From ` separator line.
        case notAnMbox(firstLine: String)
    }

    public let format: MboxFormat
    /// Lines longer than this are never separators, so they are streamed without being held whole.
    private let maxHeld = MboxFromLine.maxLength + 2
    private var held: [UInt8] = []
    private var heldOffset: Int64 = 0
    /// In the middle of a long line whose start was already emitted.
    private var inLongLine = false
    /// The empty line last seen, held back until we know whether a separator follows.
    private var pendingBlank: [UInt8]?
    private var inMessage = false
    private var offset: Int64

    /// - Parameter startOffset: the stream offset of the first byte fed (for byte ranges of a file).
    public init(format: MboxFormat = .mboxrd, startOffset: Int64 = 0) {
        self.format = format
        self.offset = startOffset
    }

    /// Feeds the next bytes of the stream.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) throws -> Void) throws {
        let base = offset
        let n = bytes.count
        var i = 0
        // A run of ordinary lines inside this chunk, emitted in one piece.
        var runStart: Int?
        func flushRun(upTo end: Int) throws {
            if let s = runStart, end > s {
                try emit(.body(UnsafeRawBufferPointer(rebasing: bytes[s..<end])))
            }
            runStart = nil
        }
        while i < n {
            let rest = n - i
            let nlPointer = memchr(bytes.baseAddress! + i, Int32(UInt8(ascii: "\n")), rest)
            let nl = nlPointer.map { bytes.baseAddress!.distance(to: UnsafeRawPointer($0)) }
            if inLongLine {
                let end = nl.map { $0 + 1 } ?? n
                if runStart == nil { runStart = i }
                if nl != nil { inLongLine = false }
                i = end
                continue
            }
            guard let nl else {
                try flushRun(upTo: i)
                if held.isEmpty { heldOffset = base + Int64(i) }
                held.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<n]))
                if held.count > maxHeld {
                    try startLongLine(emit)
                }
                i = n
                break
            }
            if held.isEmpty {
                let line = UnsafeRawBufferPointer(rebasing: bytes[i...nl])
                if inMessage && pendingBlank == nil && !Self.mayBeSpecial(line) {
                    if runStart == nil { runStart = i }
                } else {
                    try flushRun(upTo: i)
                    try handleLine(line, at: base + Int64(i), emit)
                }
            } else {
                try flushRun(upTo: i)
                held.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...nl]))
                let line = held
                held.removeAll(keepingCapacity: true)
                try line.withUnsafeBytes { try handleLine($0, at: heldOffset, emit) }
            }
            i = nl + 1
        }
        try flushRun(upTo: n)
        offset = base + Int64(n)
    }

    /// Ends the stream: the last message ends here.
    public mutating func finish(_ emit: (Event) throws -> Void) throws {
        if !held.isEmpty {
            let line = held
            held.removeAll()
            try line.withUnsafeBytes { try handleLine($0, at: heldOffset, emit) }
        }
        // A trailing empty line is the mbox's padding, not the message's.
        pendingBlank = nil
        if inMessage {
            try emit(.end(offset: offset))
            inMessage = false
        }
    }

    /// Lines that need a look: empty ones, `From ` ones and escaped `>…From ` ones.
    private static func mayBeSpecial(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let first = line.first else { return true }
        return first == UInt8(ascii: "\n") || first == UInt8(ascii: "\r") || first == UInt8(ascii: "F")
            || first == UInt8(ascii: ">")
    }

    private static func content(_ line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = line.count
        if end > 0, line[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        if end > 0, line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: line[0..<end])
    }

    private mutating func handleLine(_ line: UnsafeRawBufferPointer, at lineOffset: Int64,
                                     _ emit: (Event) throws -> Void) throws {
        let content = Self.content(line)
        if !inMessage {
            if content.isEmpty { return }  // empty lines before the first message
            guard MboxFromLine.isSeparator(content) else {
                throw ScanError.notAnMbox(firstLine: String(decoding: content.prefix(80), as: UTF8.self))
            }
            inMessage = true
            try emit(.begin(fromLine: Array(content), offset: lineOffset))
            return
        }
        if content.isEmpty {
            if let blank = pendingBlank { try blank.withUnsafeBytes { try emit(.body($0)) } }
            pendingBlank = Array(line)
            return
        }
        if pendingBlank != nil, content.first == UInt8(ascii: "F"), MboxFromLine.isSeparator(content) {
            pendingBlank = nil
            try emit(.end(offset: lineOffset))
            try emit(.begin(fromLine: Array(content), offset: lineOffset))
            return
        }
        if let blank = pendingBlank {
            try blank.withUnsafeBytes { try emit(.body($0)) }
            pendingBlank = nil
        }
        let drop = format.unescapeCount(content)
        try emit(.body(UnsafeRawBufferPointer(rebasing: line[drop...])))
    }

    /// The held bytes are too long to be a separator: emit them as the start of a long body line.
    private mutating func startLongLine(_ emit: (Event) throws -> Void) throws {
        let line = held
        held.removeAll(keepingCapacity: true)
        guard inMessage else {
            throw ScanError.notAnMbox(firstLine: String(decoding: line.prefix(80), as: UTF8.self))
        }
        if let blank = pendingBlank {
            try blank.withUnsafeBytes { try emit(.body($0)) }
            pendingBlank = nil
        }
        let drop = format.unescapeCount(line)
        try line.withUnsafeBytes { try emit(.body(UnsafeRawBufferPointer(rebasing: $0[drop...]))) }
        inLongLine = true
    }
}
