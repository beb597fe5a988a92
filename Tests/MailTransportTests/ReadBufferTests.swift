import IMAPCore
@testable import MailTransport
import NIOCore
import Testing

/// How a client keeps the bytes it has read and not yet parsed (`absorb`, `releaseIfParsed`).
struct ReadBufferTests {
    @Test func aReadIsTakenAsItIsWhenNothingIsLeftOver() {
        var pending = ByteBuffer()
        var more = ByteBuffer(string: "* OK ready\r\n")
        let storage = more.withUnsafeReadableBytes { $0.baseAddress }
        pending.absorb(&more)
        #expect(pending.withUnsafeReadableBytes { $0.baseAddress } == storage)
        #expect(pending.readableBytes == 12)
    }

    /// 60,000 FETCH lines read in chunks of 10,007 bytes, so nearly every read ends mid-line: every
    /// line is parsed once, and the buffer stays the size of a read, not of the whole stream.
    @Test func linesCutByReadsAreJoinedAndTheBufferStaysSmall() throws {
        let count = 60_000
        var stream = ByteBuffer()
        for uid in 1...count { stream.writeString("* \(uid) FETCH (UID \(uid) FLAGS (\\Seen))\r\n") }
        var parser = IMAPResponseParser()
        var pending = ByteBuffer()
        var uids: [UInt32] = []
        var largest = 0
        while stream.readableBytes > 0 {
            var chunk = stream.readSlice(length: min(10_007, stream.readableBytes))!
            pending.releaseIfParsed()
            pending.absorb(&chunk)
            largest = max(largest, pending.capacity)
            while let event = try parser.next(&pending) {
                if case let .fetchAttribute(.uid(u)) = event { uids.append(u) }
            }
        }
        #expect(uids == Array(1...UInt32(count)))
        #expect(largest < 256 << 10, "the buffer grew to \(largest) bytes")
    }
}
