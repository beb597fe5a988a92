import Foundation
import IMAPCore
import NIOCore
import Testing

func text(_ chunks: [CommandChunk]) -> String {
    chunks.map {
        switch $0 {
        case let .bytes(b): return String(decoding: b, as: UTF8.self)
        case .waitForContinuation: return "<wait>"
        }
    }.joined()
}

struct EncoderTests {
    let plain = IMAPCommandEncoder()
    let plus = IMAPCommandEncoder(literalPlus: true)

    @Test func choosesAtomQuotedOrLiteral() {
        #expect(text(plain.encode(tag: "a1", .login(user: "jean", password: "secret"))) == "a1 LOGIN jean secret\r\n")
        #expect(text(plain.encode(tag: "a1", .login(user: "jean dupont", password: "se\"c\\ret"))) == "a1 LOGIN \"jean dupont\" \"se\\\"c\\\\ret\"\r\n")
        #expect(text(plain.encode(tag: "a1", .login(user: "", password: "x"))) == "a1 LOGIN \"\" x\r\n")
        // 8-bit without UTF8=ACCEPT: a literal, synchronizing unless LITERAL+.
        #expect(text(plain.encode(tag: "a1", .login(user: "jean", password: "mötley"))) == "a1 LOGIN jean {7}\r\n<wait>mötley\r\n")
        #expect(text(plus.encode(tag: "a1", .login(user: "jean", password: "mötley"))) == "a1 LOGIN jean {7+}\r\nmötley\r\n")
        #expect(text(IMAPCommandEncoder(utf8Accept: true).encode(tag: "a1", .login(user: "jean", password: "mötley"))) == "a1 LOGIN jean \"mötley\"\r\n")
        // LITERAL-: only up to 4096 bytes go without waiting.
        let minus = IMAPCommandEncoder(literalMinus: true)
        #expect(minus.nonSynchronizing(4096) && !minus.nonSynchronizing(4097))
    }

    @Test func encodesTheCommandsTheClientUses() {
        #expect(text(plain.encode(tag: "t", .select("Old/Ärger"))) == "t SELECT {10}\r\n<wait>Old/Ärger\r\n")
        #expect(text(plain.encode(tag: "t", .select(ModifiedUTF7.encode("Old/Ärger")))) == "t SELECT Old/&AMQ-rger\r\n")
        #expect(text(plain.encode(tag: "t", .list(reference: "", pattern: "*", returnSpecialUse: true))) == "t LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n")
        #expect(text(plain.encode(tag: "t", .uidFetch(UIDSet([5...Int.max32]), items: ["UID", "FLAGS", "BODY.PEEK[]"]))) == "t UID FETCH 5:* (UID FLAGS BODY.PEEK[])\r\n")
        #expect(text(plain.encode(tag: "t", .uidStore(UIDSet(uids: [1, 2, 3, 7]), operation: "+FLAGS.SILENT", flags: ["\\Deleted"]))) == "t UID STORE 1:3,7 +FLAGS.SILENT (\\Deleted)\r\n")
        #expect(text(plain.encode(tag: "t", .uidExpunge(UIDSet(uids: [4])))) == "t UID EXPUNGE 4\r\n")
        #expect(text(plain.encode(tag: "t", .id([("name", "mailfunnel"), ("version", "0.1")]))) == "t ID (\"name\" \"mailfunnel\" \"version\" \"0.1\")\r\n")
        #expect(text(plain.encode(tag: "t", .authenticate(mechanism: "PLAIN", initialResponse: "AGplYW4Ac2VjcmV0"))) == "t AUTHENTICATE PLAIN AGplYW4Ac2VjcmV0\r\n")
        #expect(text(plain.encode(tag: "t", .authenticate(mechanism: "EXTERNAL", initialResponse: ""))) == "t AUTHENTICATE EXTERNAL =\r\n")
        #expect(text(plain.encode(tag: "t", .status("INBOX", items: ["UIDNEXT", "UIDVALIDITY"]))) == "t STATUS INBOX (UIDNEXT UIDVALIDITY)\r\n")
        #expect(text(plain.done()) == "DONE\r\n")
    }

    @Test func encodesAppendItems() {
        let date = Date(timeIntervalSince1970: 837_596_665)  // 17-Jul-1996 09:44:25 UTC
        #expect(text(plus.appendStart(tag: "a9", mailbox: "INBOX")) == "a9 APPEND INBOX")
        #expect(text(plus.appendItem(flags: ["\\Seen", "$Forwarded"], date: date, size: 310)) == " (\\Seen $Forwarded) \"17-Jul-1996 09:44:25 +0000\" {310+}\r\n")
        #expect(text(plain.appendItem(flags: [], date: nil, size: 3)) == " {3}\r\n<wait>")
        #expect(text(plus.appendEnd()) == "\r\n")
    }

    @Test func marksSecretsForTheTrace() {
        #expect(IMAPCommand.login(user: "a", password: "b").isSensitive)
        #expect(IMAPCommand.authenticate(mechanism: "PLAIN", initialResponse: nil).isSensitive)
        #expect(!IMAPCommand.select("INBOX").isSensitive)
    }

    /// What the encoder quotes, the parser reads back as it was.
    @Test(arguments: ["plain", "two words", "quote \" and \\ backslash", "", "[Gmail]/All Mail", "a)b(c"])
    func quotedStringsRoundTrip(_ s: String) throws {
        // (In Swift "\r\n" is one Character, so dropLast(1) removes the CRLF.)
        let wire = text(plain.encode(tag: "t", .select(s))).dropFirst("t SELECT ".count).dropLast(1)
        let events = try parseAll("* LIST () \"/\" \(wire)\r\n")
        #expect(events == [.untagged(.list(ListEntry(attributes: [], delimiter: "/", name: s)))])
    }
}

extension Int {
    static let max32 = Int(UInt32.max)
}

extension UIDSet {
    init(_ ranges: [ClosedRange<Int>]) {
        self.init(ranges.map { UInt32($0.lowerBound)...UInt32($0.upperBound) })
    }
}

struct ValueTests {
    @Test(arguments: [("INBOX", "INBOX"), ("Entwürfe", "Entw&APw-rfe"), ("Tom & Jerry", "Tom &- Jerry"),
                      ("日本語", "&ZeVnLIqe-"), ("Ärger/Öl", "&AMQ-rger/&ANY-l"), ("😀", "&2D3eAA-")])
    func modifiedUTF7(_ name: String, _ encoded: String) {
        #expect(ModifiedUTF7.encode(name) == encoded)
        #expect(ModifiedUTF7.decode(encoded) == name)
    }

    @Test func modifiedUTF7RefusesGarbage() {
        #expect(ModifiedUTF7.decode("&Zz") == nil)
        #expect(ModifiedUTF7.decode("bad\u{1}") == nil)
    }

    /// (UID 4294967295 is written `*`: UIDSet uses UInt32.max for it.)
    @Test(arguments: ["1", "1:4,7,9:*", "2:3", "4294967294"])
    func uidSetsRoundTrip(_ text: String) throws {
        #expect(try #require(UIDSet(text)).description == text)
    }

    @Test func uidSets() throws {
        #expect(UIDSet(uids: [5, 3, 4, 9, 1, 3]).description == "1,3:5,9")
        #expect(UIDSet("0") == nil)
        #expect(UIDSet("1:") == nil)
        #expect(UIDSet("") == nil)
        #expect(try #require(UIDSet("3:1")).description == "1:3")
        #expect(try #require(UIDSet("1:3,7")).uids == [1, 2, 3, 7])
        #expect(try #require(UIDSet("5:*")).contains(4_000_000_000))
    }

    @Test func internalDates() throws {
        let d = try #require(InternalDate.parse("17-Jul-1996 02:44:25 -0700"))
        #expect(d == Date(timeIntervalSince1970: 837_596_665))
        #expect(InternalDate.format(d) == "17-Jul-1996 09:44:25 +0000")
        #expect(InternalDate.parse(" 1-Jan-2000 00:00:00 +0000") == Date(timeIntervalSince1970: 946_684_800))
        #expect(InternalDate.parse(InternalDate.format(Date(timeIntervalSince1970: 1_709_208_000))) == Date(timeIntervalSince1970: 1_709_208_000))
        #expect(InternalDate.parse("32-Foo-1996 02:44:25 -0700") == nil)
        // Month names in any case; every other deviation from the grammar is refused.
        #expect(InternalDate.parse("17-JUL-1996 02:44:25 -0700") == d)
        #expect(InternalDate.parse("17-jul-1996 02:44:25 -0700") == d)
        for bad in ["17-Jul-1996 02:44:25 0700", "17-Jul-1996 02:44:25 -07000", "17-Jul-1996 02:44:25 -070",
                    "17-Jul-1996 02:44 -0700", "17-Jul-1996 02:44:25 -0700x", "17 Jul 1996 02:44:25 -0700",
                    "17-Ju-1996 02:44:25 -0700", "", "17-Jul-"] {
            #expect(InternalDate.parse(bad) == nil, "\(bad)")
        }
    }

    /// A date with a year four digits cannot hold, from a source's INTERNALDATE or anywhere, is
    /// written as the nearest one they hold: no trap converting it, no malformed APPEND.
    @Test func datesBeyondFourDigitYearsAreClamped() throws {
        let far = try #require(InternalDate.parse("17-Jul-999999999 02:44:25 +0000"))
        #expect(InternalDate.format(far) == "31-Dec-9999 23:59:59 +0000")
        #expect(InternalDate.format(Date(timeIntervalSince1970: 1e300)) == "31-Dec-9999 23:59:59 +0000")
        #expect(InternalDate.format(Date(timeIntervalSince1970: -1e300)) == "01-Jan-0001 00:00:00 +0000")
        #expect(InternalDate.format(Date(timeIntervalSince1970: .infinity)) == "31-Dec-9999 23:59:59 +0000")
        #expect(InternalDate.format(Date(timeIntervalSince1970: .nan)) == "01-Jan-1970 00:00:00 +0000")
    }
}
