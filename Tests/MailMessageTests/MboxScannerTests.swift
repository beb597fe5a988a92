import Foundation
import MailMessage
import Testing

/// Runs the scanner over `input` fed in chunks of `chunk` bytes; returns the messages' bytes.
func scanMbox(_ input: [UInt8], chunk: Int, format: MboxFormat = .mboxrd) throws -> [[UInt8]] {
    var scanner = MboxScanner(format: format)
    var messages: [[UInt8]] = []
    var current: [UInt8]?
    func handle(_ e: MboxScanner.Event) {
        switch e {
        case .begin: current = []
        case let .body(b): current! += b
        case .end: messages.append(current!); current = nil
        }
    }
    var i = 0
    while i < input.count {
        let end = min(input.count, i + chunk)
        try input[i..<end].withUnsafeBytes { try scanner.feed($0, handle) }
        i = end
    }
    try scanner.finish(handle)
    return messages
}

struct MboxScannerTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        let name: String
        let mbox: String
        let messages: [String]
        var format: MboxFormat = .mboxrd
        var testDescription: String { name }
    }

    static let sep1 = "From alice@example.org Sat Jan  3 01:05:34 1996\n"
    static let sep2 = "From bob@example.org Mon Feb 12 13:14:15 2024\n"

    static let fixtures: [Fixture] = [
        Fixture(name: "two messages", mbox: sep1 + "A: 1\n\nbody one\n\n" + sep2 + "B: 2\n\nbody two\n\n",
                messages: ["A: 1\n\nbody one\n", "B: 2\n\nbody two\n"]),
        Fixture(name: "CRLF mbox", mbox: "From a@b Sat Jan  3 01:05:34 1996\r\nA: 1\r\n\r\nx\r\n\r\nFrom c@d Sat Jan  3 01:05:35 1996\r\nB: 2\r\n\r\ny\r\n",
                messages: ["A: 1\r\n\r\nx\r\n", "B: 2\r\n\r\ny\r\n"]),
        Fixture(name: "mboxrd unescaping", mbox: sep1 + "A: 1\n\n>From me\n>>From you\n>>>From them\n>Fromage\n",
                messages: ["A: 1\n\nFrom me\n>From you\n>>From them\n>Fromage\n"]),
        Fixture(name: "mboxo unescaping", mbox: sep1 + "A: 1\n\n>From me\n>>From you\n",
                messages: ["A: 1\n\nFrom me\n>>From you\n"], format: .mboxo),
        Fixture(name: "unescaped From line not after an empty line", mbox: sep1 + "A: 1\n\nsee below\nFrom here on it is mine\n\n" + sep2 + "B: 2\n\ny\n",
                messages: ["A: 1\n\nsee below\nFrom here on it is mine\n", "B: 2\n\ny\n"]),
        Fixture(name: "From line after an empty line without a date is body", mbox: sep1 + "A: 1\n\nhello\n\nFrom the desk of Jean\n",
                messages: ["A: 1\n\nhello\n\nFrom the desk of Jean\n"]),
        Fixture(name: "empty body", mbox: sep1 + "Subject: empty\n\n\n" + sep2 + "B: 2\n\ny\n",
                messages: ["Subject: empty\n\n", "B: 2\n\ny\n"]),
        Fixture(name: "last message without trailing newline", mbox: sep1 + "A: 1\n\nno newline at the end",
                messages: ["A: 1\n\nno newline at the end"]),
        Fixture(name: "last message with one newline", mbox: sep1 + "A: 1\n\nend\n", messages: ["A: 1\n\nend\n"]),
        Fixture(name: "blank lines before the first message", mbox: "\n\n" + sep1 + "A: 1\n\nx\n", messages: ["A: 1\n\nx\n"]),
        Fixture(name: "several empty lines inside and at the end", mbox: sep1 + "A: 1\n\n\n\nx\n\n\n\n",
                messages: ["A: 1\n\n\n\nx\n\n\n"]),
        Fixture(name: "empty mbox", mbox: "", messages: []),
    ]

    @Test(arguments: fixtures)
    func splitsAndUnescapes(_ f: Fixture) throws {
        let input = Array(f.mbox.utf8)
        let expected = f.messages.map { Array($0.utf8) }
        #expect(try scanMbox(input, chunk: 1 << 16, format: f.format) == expected)
        // One byte at a time, and awkward chunk sizes, give the same messages.
        for chunk in [1, 2, 3, 5, 13] {
            #expect(try scanMbox(input, chunk: chunk, format: f.format) == expected, "chunk size \(chunk)")
        }
    }

    @Test func refusesAFileThatIsNotAnMbox() {
        #expect(throws: MboxScanner.ScanError.self) { try scanMbox(Array("Subject: hi\n\nbody\n".utf8), chunk: 4) }
        // A first line longer than any separator is refused too, without holding it all.
        let long = Array(String(repeating: "x", count: 5000).utf8)
        #expect(throws: MboxScanner.ScanError.self) { try scanMbox(long, chunk: 100) }
    }

    @Test func streamsLinesLongerThanASeparatorWithoutChangingThem() throws {
        // A 3 MB line without a newline, starting with an escaped From: held only up to the
        // separator limit, unescaped once, and delivered whole.
        let line = ">From " + String(repeating: "y", count: 3 << 20)
        let input = Array((Self.sep1 + "A: 1\n\n" + line + "\nlast\n").utf8)
        for chunk in [4096, 65536, 1 << 20] {
            let messages = try scanMbox(input, chunk: chunk)
            #expect(messages.count == 1)
            #expect(messages.first == Array(("A: 1\n\n" + line.dropFirst() + "\nlast\n").utf8))
        }
    }

    @Test func reportsRegionOffsets() throws {
        let text = Self.sep1 + "A: 1\n\nx\n\n" + Self.sep2 + "B: 2\n\ny\n"
        var scanner = MboxScanner()
        var regions: [(Int64, Int64)] = []
        var start: Int64 = 0
        func handle(_ e: MboxScanner.Event) {
            if case let .begin(_, o) = e { start = o }
            if case let .end(o) = e { regions.append((start, o)) }
        }
        try Array(text.utf8).withUnsafeBytes { try scanner.feed($0, handle) }
        try scanner.finish(handle)
        let secondStart = Int64((Self.sep1 + "A: 1\n\nx\n\n").utf8.count)
        #expect(regions.map(\.0) == [0, secondStart])
        #expect(regions.map(\.1) == [secondStart, Int64(text.utf8.count)])
    }
}

struct MboxFromLineTests {
    @Test(arguments: [
        ("From alice@example.org Sat Jan  3 01:05:34 1996", true),
        ("From MAILER-DAEMON Fri Jul  8 12:08:34 2011", true),
        ("From a@b Mon Feb 12 13:14 2024", true),
        ("From a@b Mon, 12 Feb 2024 13:14:15 +0100", true),
        ("From the desk of Jean", false),
        ("From here on, at 10:30 we go", false),
        ("From: alice@example.org", false),
        ("from a@b Sat Jan  3 01:05:34 1996", false),
        ("From ", false),
    ])
    func recognisesSeparators(line: String, expected: Bool) {
        #expect(MboxFromLine.isSeparator(Array(line.utf8)) == expected)
    }

    @Test(arguments: [
        ("From a@b Thu Feb 29 12:00:00 2024", 1_709_208_000.0),
        ("From a@b Fri Dec 31 23:59:59 1999", 946_684_799.0),
        ("From a@b Sat Jan  1 00:00:00 2000", 946_684_800.0),
        ("From a@b Wed Dec 31 23:00:00 1969", -3600.0),
        ("From a@b Tue Mar  1 00:00:00 2022 -0230", 1_646_101_800.0),
    ])
    func computesCivilDates(line: String, seconds: Double) throws {
        let parsed = try #require(MboxFromLine.parse(Array(line.utf8)))
        #expect(parsed.date == Date(timeIntervalSince1970: seconds))
    }

    @Test func parsesTheDateAsUTC() throws {
        let parsed = try #require(MboxFromLine.parse(Array("From a@b Sat Jan  3 01:05:34 1996".utf8)))
        #expect(parsed.sender == "a@b")
        #expect(parsed.date == Date(timeIntervalSince1970: 820_631_134))
        let zoned = try #require(MboxFromLine.parse(Array("From a@b Sat Jan  3 01:05:34 1996 +0100".utf8)))
        #expect(zoned.date == Date(timeIntervalSince1970: 820_631_134 - 3600))
    }
}
