import NIOCore

/// Reads the header section of a message as it streams past, and pulls out what the ledger and
/// recovery need: `Message-ID`, `Date`, and mbox's `Status`/`X-Status`.
///
/// It keeps at most `limit` bytes (1 MiB by default); a header section longer than that is scanned
/// only as far as the limit. Feed it chunks of any size, one byte at a time if need be.
/// - SeeAlso: RFC 5322 §2.2 (header fields), §2.2.3 (folding)
public struct HeaderScanner: Sendable {
    public static let defaultLimit = 1 << 20

    public let limit: Int
    private var collected: [UInt8] = []
    /// True once the blank line that ends the header section has been seen, or the limit reached.
    public private(set) var isComplete = false
    /// How many trailing bytes of `collected` matched the end-of-header pattern so far.
    private var previousWasNewline = false

    public init(limit: Int = HeaderScanner.defaultLimit) {
        self.limit = limit
        collected.reserveCapacity(4096)
    }

    /// Consumes the next chunk of the message.
    public mutating func consume(_ buffer: ByteBuffer) {
        guard !isComplete else { return }
        buffer.withUnsafeReadableBytes { consume($0) }
    }

    /// Consumes the next chunk of the message.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        guard !isComplete else { return }
        for byte in bytes {
            if collected.count >= limit {
                isComplete = true
                return
            }
            if byte == UInt8(ascii: "\r") {
                continue  // line ends are judged on LF; CR is dropped from the copy
            }
            if byte == UInt8(ascii: "\n") {
                if previousWasNewline {
                    isComplete = true
                    return
                }
                previousWasNewline = true
            } else {
                previousWasNewline = false
            }
            collected.append(byte)
        }
    }

    /// The unfolded header fields seen so far, in order, names as written.
    public var fields: [(name: String, value: String)] {
        var out: [(String, String)] = []
        var current: [UInt8] = []
        func flush() {
            guard let colon = current.firstIndex(of: UInt8(ascii: ":")) else { return }
            let name = String(decoding: current[..<colon], as: UTF8.self)
            guard !name.isEmpty, !name.contains(" ") else { return }
            let value = String(decoding: current[(colon + 1)...], as: UTF8.self)
            out.append((name, value.trimmingSpaces()))
        }
        var lineStart = true
        for byte in collected {
            if lineStart && (byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) && !current.isEmpty {
                current.append(UInt8(ascii: " "))  // folded continuation: unfold
                lineStart = false
                continue
            }
            if lineStart && !current.isEmpty {
                flush()
                current.removeAll(keepingCapacity: true)
            }
            lineStart = false
            if byte == UInt8(ascii: "\n") {
                lineStart = true
            } else {
                current.append(byte)
            }
        }
        flush()
        return out
    }

    /// The first value of a header field, by case-insensitive name.
    public func value(of name: String) -> String? {
        firstValue(lowercasedName: Array(name.lowercased().utf8))?.trimmingSpaces()
    }

    /// The `Message-ID` with its angle brackets, or nil when the message has none.
    public var messageID: String? {
        guard let raw = firstValue(lowercasedName: Array("message-id".utf8)) else { return nil }
        let trimmed = raw.trimmingSpaces()
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The first value of a field, found by scanning the collected bytes for a line that starts
    /// with the name (ASCII, any case) and a colon; unfolded, not trimmed. Asked for every message,
    /// so it does not build every field as `fields` does.
    private func firstValue(lowercasedName name: [UInt8]) -> String? {
        var i = 0
        let n = collected.count
        while i < n {
            // `i` is at a line start.
            var j = 0
            while j < name.count, i + j < n, collected[i + j] | 0x20 == name[j] { j += 1 }
            if j == name.count, i + j < n, collected[i + j] == UInt8(ascii: ":") {
                var value: [UInt8] = []
                var k = i + j + 1
                while k < n {
                    if collected[k] == UInt8(ascii: "\n") {
                        // A continuation line starts with a space or a tab.
                        guard k + 1 < n, collected[k + 1] == UInt8(ascii: " ") || collected[k + 1] == UInt8(ascii: "\t") else { break }
                        value.append(UInt8(ascii: " "))
                        k += 2
                        continue
                    }
                    value.append(collected[k])
                    k += 1
                }
                return String(decoding: value, as: UTF8.self)
            }
            guard let lf = collected[i...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            i = lf + 1
        }
        return nil
    }

    /// The `Date` header as written.
    public var date: String? { value(of: "Date") }
}

extension String {
    /// Trims ASCII spaces, tabs and line ends at both ends.
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        func isSpace(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" || s == "\r" || s == "\n" }
        while start < end, isSpace(scalars[start]) { start = scalars.index(after: start) }
        while end > start, isSpace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }
}
