/// Cuts what an IMAP server sends into the lines a protocol trace shows (`-vv`): each line as it
/// came, a literal (a message body) as its size only. Bytes come as they were read, lines cut
/// anywhere.
public struct IMAPTraceLines: Sendable {
    private var partial: [UInt8] = []
    private var literalLeft = 0
    /// Longer lines are shown cut: a trace is for reading.
    static let longest = 2000

    public init() {}

    public mutating func feed<C: Collection>(_ bytes: C, _ emit: (String) -> Void) where C.Element == UInt8 {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if literalLeft > 0 {
                let n = min(literalLeft, bytes.distance(from: i, to: bytes.endIndex))
                literalLeft -= n
                i = bytes.index(i, offsetBy: n)
                continue
            }
            let b = bytes[i]
            i = bytes.index(after: i)
            guard b == 0x0A else {
                if partial.count < Self.longest { partial.append(b) }
                continue
            }
            if partial.last == 0x0D { partial.removeLast() }
            var text = String(decoding: partial, as: UTF8.self)
            if partial.count >= Self.longest { text += "…" }
            if let n = Self.literalLength(partial) {
                literalLeft = n
                text += " <\(n) bytes>"
            }
            partial.removeAll(keepingCapacity: true)
            emit(text)
        }
    }

    /// `{n}` or `{n+}` at the end of a line: n bytes of literal follow.
    static func literalLength(_ line: [UInt8]) -> Int? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = line[(open + 1)..<(line.count - 1)]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
