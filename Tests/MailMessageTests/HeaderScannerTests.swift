import MailMessage
import NIOCore
import Testing

struct HeaderScannerTests {
    static func scan(_ text: String, chunk: Int = .max, limit: Int = HeaderScanner.defaultLimit) -> HeaderScanner {
        var scanner = HeaderScanner(limit: limit)
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            scanner.consume(ByteBuffer(bytes: bytes[i..<end]))
            i = end
        }
        return scanner
    }

    struct Fixture: CustomTestStringConvertible, Sendable {
        let name: String
        let message: String
        let messageID: String?
        let date: String?
        var testDescription: String { name }
    }

    static let fixtures: [Fixture] = [
        Fixture(name: "plain LF", message: "From: a@b\nMessage-ID: <x@y>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody\n",
                messageID: "<x@y>", date: "Mon, 1 Jan 2024 10:00:00 +0000"),
        Fixture(name: "CRLF", message: "Message-Id: <crlf@y>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n",
                messageID: "<crlf@y>", date: "Tue, 2 Jan 2024 10:00:00 +0000"),
        Fixture(name: "folded Message-ID", message: "message-id:\n <folded@y>\nSubject: s\n\nb\n",
                messageID: "<folded@y>", date: nil),
        Fixture(name: "no Message-ID", message: "Subject: none\n\nMessage-ID: <in-body@y>\n",
                messageID: nil, date: nil),
        Fixture(name: "empty Message-ID", message: "Message-ID: \nSubject: s\n\n", messageID: nil, date: nil),
        Fixture(name: "first of two wins", message: "Message-ID: <one@y>\nMessage-ID: <two@y>\n\n",
                messageID: "<one@y>", date: nil),
        Fixture(name: "headers only, no body", message: "Message-ID: <h@y>\nDate: d", messageID: "<h@y>", date: "d"),
    ]

    @Test(arguments: fixtures)
    func extractsFields(_ f: Fixture) {
        let whole = Self.scan(f.message)
        #expect(whole.messageID == f.messageID)
        #expect(whole.date == f.date)
        // One byte at a time gives the same answer.
        let drip = Self.scan(f.message, chunk: 1)
        #expect(drip.messageID == f.messageID)
        #expect(drip.date == f.date)
    }

    @Test func stopsAtTheEndOfTheHeader() {
        let s = Self.scan("A: 1\n\nB: 2\n")
        #expect(s.isComplete)
        #expect(s.value(of: "B") == nil)
        #expect(s.value(of: "a") == "1")
    }

    @Test func keepsNoMoreThanTheLimit() {
        // A header section longer than the limit: the scanner stops at the limit and says it is done.
        let long = "X-Long: " + String(repeating: "a", count: 5000) + "\nMessage-ID: <late@y>\n\n"
        let s = Self.scan(long, limit: 1024)
        #expect(s.isComplete)
        #expect(s.messageID == nil)
        #expect(Self.scan(long, limit: 10_000).messageID == "<late@y>")
    }
}

struct CRLFNormalizerTests {
    static func normalize(_ text: String, chunk: Int) -> String {
        var n = CRLFNormalizer()
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            out += n.normalize(ByteBuffer(bytes: bytes[i..<end])).readableBytesView
            i = end
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func turnsBareLFIntoCRLF(chunk: Int) {
        #expect(Self.normalize("a\nb\r\nc\n\nd", chunk: chunk) == "a\r\nb\r\nc\r\n\r\nd")
        #expect(Self.normalize("\n", chunk: chunk) == "\r\n")
        #expect(Self.normalize("x\r\n", chunk: chunk) == "x\r\n")
        // A lone CR is left alone; only LF gets a CR.
        #expect(Self.normalize("a\rb\n", chunk: chunk) == "a\rb\r\n")
    }

    @Test func leavesCRLFTextUntouched() {
        var n = CRLFNormalizer()
        let input = ByteBuffer(string: "one\r\ntwo\r\n")
        #expect(n.normalize(input) == input)
    }

    /// The raw-pointer path writes straight into the destination, and says whether it added a CR.
    @Test(arguments: [1, 2, 3, 7, 1000])
    func normalisesRawBytesIntoABuffer(chunk: Int) {
        let text = Array("a\nb\r\nc\n\nd\r".utf8) + Array("\nx\n".utf8)
        var n = CRLFNormalizer()
        var out = ByteBuffer()
        var added = false
        var i = 0
        while i < text.count {
            let end = min(text.count, i + chunk)
            text[i..<end].withUnsafeBytes { added = n.normalize($0, into: &out) || added }
            i = end
        }
        #expect(String(buffer: out) == "a\r\nb\r\nc\r\n\r\nd\r\nx\r\n")
        #expect(added)
        var m = CRLFNormalizer()
        var same = ByteBuffer()
        let changed = Array("one\r\ntwo\r\n".utf8).withUnsafeBytes { m.normalize($0, into: &same) }
        #expect(!changed && String(buffer: same) == "one\r\ntwo\r\n")
    }
}

struct HeaderLookupTests {
    /// `value(of:)` scans for the one field: any case, first occurrence, unfolded and trimmed, and
    /// never a field whose name only starts with the one asked for.
    @Test(arguments: [1, 5, 1000])
    func findsOneFieldByName(chunk: Int) {
        let h = HeaderScannerTests.scan("""
            Message-ID-Extra: <wrong@x>\r
            return-path:   <bounce@example.org>  \r
            Subject: first\r
            \tfolded on\r
            SUBJECT: second\r
            Message-Id: <right@x>\r
            \r
            Return-Path: <body@x>\r

            """, chunk: chunk)
        #expect(h.value(of: "Return-Path") == "<bounce@example.org>")
        #expect(h.value(of: "subject") == "first folded on")
        #expect(h.messageID == "<right@x>")
        #expect(h.value(of: "X-Missing") == nil)
        // The scan agrees with the full parse.
        #expect(h.value(of: "Subject") == h.fields.first { $0.name.lowercased() == "subject" }?.value)
    }
}

struct MessageFlagsTests {
    @Test func maildirInfoRoundTrips() {
        let f = MessageFlags(maildirInfo: "FRS")
        #expect(f.flagged && f.answered && f.seen && !f.draft && !f.deleted)
        #expect(f.maildirInfo == "FRS")
        let all = MessageFlags(maildirInfo: "DFPRST")
        #expect(all.maildirInfo == "DFPRST")
        #expect(all.keywords == [MessageFlags.forwardedKeyword])
        #expect(MessageFlags(maildirInfo: "ab").isEmpty)
    }

    @Test func mboxStatusHeaders() {
        let f = MessageFlags(mboxStatus: "RO", xStatus: "AF")
        #expect(f.seen && f.answered && f.flagged && !f.draft)
        let g = MessageFlags(mboxStatus: "O", xStatus: "T")
        #expect(!g.seen && g.draft)
        #expect(MessageFlags(mboxStatus: nil, xStatus: nil).isEmpty)
    }
}
