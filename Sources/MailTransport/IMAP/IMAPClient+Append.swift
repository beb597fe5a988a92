import Foundation
import IMAPCore
import NIOCore

/// Message bytes an APPEND reads piece by piece, so a large message is never held whole.
public protocol AppendBody {
    var size: Int { get }
    /// Up to `maxLength` bytes from `offset`.
    func readChunk(at offset: Int, maxLength: Int) throws -> ByteBuffer
}

/// One message of an APPEND.
public struct AppendItem {
    public var flags: [String]
    public var date: Date?
    public var body: AppendBody

    public init(flags: [String], date: Date?, body: AppendBody) {
        self.flags = flags
        self.date = date
        self.body = body
    }
}

extension IMAPClient {
    /// APPENDs messages, all in one command when the server has MULTIAPPEND (an all-or-nothing
    /// transaction), and returns APPENDUID's UIDVALIDITY and UIDs when the server has UIDPLUS.
    /// - SeeAlso: RFC 3501 §6.3.11, RFC 3502, RFC 4315
    @discardableResult
    public func append(_ items: [AppendItem], to mailbox: String) async throws -> (uidValidity: UInt32, uids: [UInt32])? {
        precondition(!items.isEmpty)
        precondition(items.count == 1 || has("MULTIAPPEND"), "several messages in one APPEND need MULTIAPPEND")
        let tag = nextTag()
        // With LITERAL+ nothing waits for the server, so the command, each message's head and its
        // bytes go out gathered.
        var outbox = Outbox(connection)
        func queue(_ chunks: [CommandChunk]) async throws {
            if chunks.contains(where: { if case .waitForContinuation = $0 { return true } else { return false } }) {
                try await outbox.drain()
                try await send(chunks, tag: tag, sensitive: false)
                return
            }
            for case let .bytes(bytes) in chunks {
                if trace.isEnabled { trace.client(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)) }
                outbox.write(bytes)
            }
        }
        try await queue(encoder.appendStart(tag: tag, mailbox: mailbox))
        for item in items {
            try await queue(encoder.appendItem(flags: item.flags, date: item.date, size: item.body.size))
            let written = try await outbox.write(item.body)
            guard written == item.body.size else {
                // The literal's length is on the wire already: the stream cannot be mended.
                await connection.close()
                throw TransportError.messageCutShort(endpoint: endpoint.description, size: item.body.size, sent: written)
            }
            trace.client("<\(item.body.size) bytes of message>")
        }
        try await queue(encoder.appendEnd())
        try await outbox.drain()
        let done = try await collect(tag: tag, name: "APPEND", mailbox: mailbox, onUntagged: { _ in }, onFetch: { _ in })
        // APPENDUID names one UID a message; a set of any other size cannot be matched to them
        // (and is not expanded, whatever its size).
        if case let .appendUID(validity, uids)? = done.code, uids.count == UInt64(items.count) { return (validity, uids.uids) }
        return nil
    }
}
