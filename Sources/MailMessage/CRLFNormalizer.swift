import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns bare LF line ends into CRLF as a message streams past, one chunk at a time.
///
/// IMAP APPEND and SMTP DATA need CRLF; mbox and Maildir files usually hold bare LF. A CR that ends
/// one chunk and the LF that starts the next are recognised as one CRLF.
/// - SeeAlso: RFC 5322 §2.3, RFC 3501 §4.3
public struct CRLFNormalizer: Sendable {
    private var lastWasCR = false

    public init() {}

    /// Appends `bytes` to `out` with every bare LF preceded by a CR; returns whether it added any.
    @discardableResult
    public mutating func normalize(_ bytes: UnsafeRawBufferPointer, into out: inout ByteBuffer) -> Bool {
        var added = false
        var runStart = 0
        var i = 0
        guard let base = bytes.baseAddress else { return false }
        while i < bytes.count, let hit = memchr(base + i, 0x0A, bytes.count - i) {
            let j = base.distance(to: UnsafeRawPointer(hit))
            let prevCR = j == 0 ? lastWasCR : bytes[j - 1] == UInt8(ascii: "\r")
            if !prevCR {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<j]))
                out.writeInteger(UInt8(ascii: "\r"))
                runStart = j
                added = true
            }
            i = j + 1
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
        if let last = bytes.last { lastWasCR = last == UInt8(ascii: "\r") }
        return added
    }

    /// Returns `chunk` with every bare LF preceded by a CR. Returns the input itself when it needs no change.
    public mutating func normalize(_ chunk: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // Most messages from a server are CRLF already: jump from LF to LF (memchr) and look at
        // the byte before each.
        let needsWork: Bool = chunk.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return false }
            var i = 0
            while i < bytes.count, let hit = memchr(base + i, 0x0A, bytes.count - i) {
                let j = base.distance(to: UnsafeRawPointer(hit))
                if !(j == 0 ? lastWasCR : bytes[j - 1] == UInt8(ascii: "\r")) { return true }
                i = j + 1
            }
            return false
        }
        guard needsWork else {
            if let last = chunk.readableBytesView.last { lastWasCR = last == UInt8(ascii: "\r") }
            return chunk
        }
        var out = allocator.buffer(capacity: chunk.readableBytes + chunk.readableBytes / 16 + 2)
        chunk.withUnsafeReadableBytes { bytes in
            var runStart = 0
            for (i, byte) in bytes.enumerated() {
                if byte == UInt8(ascii: "\n") && !lastWasCR {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
                    out.writeInteger(UInt8(ascii: "\r"))
                    runStart = i
                }
                lastWasCR = byte == UInt8(ascii: "\r")
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
        }
        return out
    }
}
