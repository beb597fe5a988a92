/// One line of a multi-line listing (CAPA, LIST, UIDL) as the server sent it: dot-unstuffed,
/// without its line end, its bytes kept, since a unique id must not be changed by decoding it.
public struct POP3Line: Sendable, Equatable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public init(stringLiteral value: String) {
        bytes = Array(value.utf8)
    }

    /// The line as text, bytes that are not UTF-8 replaced: for capabilities and messages, never
    /// for a unique id (see `POP3UniqueID`).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { text }
}
