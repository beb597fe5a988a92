/// A message's unique id (UIDL) as the bytes the server sent, and `key`, the text that names it
/// in a ledger, one-to-one with those bytes.
///
/// ```
/// unique-id = 1*70 (%x21-7E)
/// ```
/// RFC 1939 asks for 1 to 70 printable ASCII characters. Servers send longer ids, spaces and
/// 8-bit bytes, and refusing one would stop the whole maildrop, so anything but an empty id is
/// taken; a line's length is the only bound.
/// - SeeAlso: RFC 1939 §7 (UIDL)
public struct POP3UniqueID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
    }

    /// An id that is UTF-8 is its own text, as ledgers have always held it. Any other becomes
    /// U+FFFD followed by its bytes escaped (`escaped`): U+FFFD is what decoding put in place of
    /// such bytes, so an id holding it was never told apart from a damaged one, and it is the one
    /// UTF-8 id that is escaped too, keeping keys distinct.
    public var key: String {
        if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains("\u{FFFD}") {
            return text
        }
        return "\u{FFFD}" + escaped
    }

    /// The key of this id's `rank`-th message when a broken server repeats it (rank 1 is `key`):
    /// U+FFFD, the escaped bytes, a space and `#rank`. No `key` holds both U+FFFD and a space,
    /// so a repeat can never take the key of another message, listed now or later.
    public func key(rank: Int) -> String {
        rank <= 1 ? key : "\u{FFFD}\(escaped) #\(rank)"
    }

    /// Each of `%` and the bytes outside 0x21-0x7E as `%XX`, the rest as they are.
    private var escaped: String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in bytes {
            if b > 0x20, b < 0x7F, b != UInt8(ascii: "%") {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { key }
}
