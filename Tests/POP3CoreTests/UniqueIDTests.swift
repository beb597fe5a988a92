import NIOCore
import POP3Core
import Testing

/// A unique id is the bytes the server sent: two ids that differ keep keys that differ, and an id
/// that is UTF-8 keeps the key it always had.
struct UniqueIDTests {
    @Test(arguments: ["000000015d7f4a8a", "GmailId18c1f0a2b3c4d5e6", "1ÿ€~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "a b", " lead", "dé"])
    func anIDThatIsUTF8KeepsItsText(_ text: String) {
        #expect(POP3UniqueID(bytes: Array(text.utf8)).key == text)
    }

    @Test func idsThatAreNotUTF8KeepDistinctKeys() {
        let ids: [[UInt8]] = [
            [0x61, 0xFF], [0x61, 0xFE], [0x61, 0xC3], [0x61, 0xC3, 0x28],
            Array("a\u{FFFD}".utf8),   // what decoding made of each of the above before
            Array("a%FF".utf8), [0x61, 0x25, 0x46, 0x46, 0xFF],
            [0xFF], [0xFF, 0xFF],
        ]
        let keys = ids.map { POP3UniqueID(bytes: $0).key }
        #expect(Set(keys).count == ids.count, "\(keys)")
        // Stable: the same bytes give the same key on every run.
        #expect(POP3UniqueID(bytes: [0x61, 0xFF]).key == "\u{FFFD}a%FF")
        #expect(POP3UniqueID(bytes: Array("a%FF".utf8)).key == "a%FF")
        // No escaped key is the key of an id that is UTF-8.
        for k in keys where k.hasPrefix("\u{FFFD}") {
            #expect(POP3UniqueID(bytes: Array(k.utf8)).key != k)
        }
    }

    @Test func aUIDLListingKeepsTheBytes() throws {
        let wire = Array("+OK\r\n1 abc\r\n2 ab".utf8) + [0xFF] + Array("\r\n3 ab".utf8) + [0xFE] + Array("\r\n.\r\n".utf8)
        var parser = POP3ResponseParser()
        parser.expect(.lines)
        var buffer = ByteBuffer(bytes: wire)
        var lines: [POP3Line] = []
        while let e = try parser.next(&buffer) {
            if case let .line(l) = e { lines.append(l) }
            if e == .end { break }
        }
        #expect(lines.map(\.bytes) == [Array("1 abc".utf8), Array("2 ab".utf8) + [0xFF], Array("3 ab".utf8) + [0xFE]])
        #expect(lines[1] != lines[2])
    }
}
