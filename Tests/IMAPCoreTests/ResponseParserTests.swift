import IMAPCore
import NIOCore
import Testing

/// Feeds `input` in chunks of `chunk` bytes and returns every event, with consecutive body chunks
/// joined (how they are split depends on the chunking, what they hold must not).
func parseAll(_ input: String, chunk: Int = .max, limits: IMAPResponseParser.Limits = .init()) throws -> [IMAPResponseEvent] {
    try parseAll(Array(input.utf8), chunk: chunk, limits: limits)
}

func parseAll(_ input: [UInt8], chunk: Int = .max, limits: IMAPResponseParser.Limits = .init()) throws -> [IMAPResponseEvent] {
    var parser = IMAPResponseParser(limits: limits)
    var buffer = ByteBuffer()
    var events: [IMAPResponseEvent] = []
    var i = 0
    repeat {
        let end = min(input.count, i + chunk)
        buffer.writeBytes(input[i..<end])
        i = end
        while let e = try parser.next(&buffer) {
            if case let .fetchBodyBytes(b) = e, case var .fetchBodyBytes(prev)? = events.last {
                var more = b
                prev.writeBuffer(&more)
                events[events.count - 1] = .fetchBodyBytes(prev)
            } else {
                events.append(e)
            }
        }
    } while i < input.count
    return events
}

struct ResponseFixture: CustomTestStringConvertible, Sendable {
    let name: String
    let wire: String
    let events: [IMAPResponseEvent]
    var testDescription: String { name }
}

extension IMAPResponseEvent {
    static func body(_ s: String) -> IMAPResponseEvent { .fetchBodyBytes(ByteBuffer(string: s)) }
}

struct ResponseParserTests {
    static let fixtures: [ResponseFixture] = [
        // Dovecot 2.3 (Debian), as seen on the wire.
        ResponseFixture(name: "Dovecot greeting", wire: "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
                        events: [.untagged(.status(.ok, code: .capability(["IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+", "STARTTLS", "AUTH=PLAIN"]), text: "Dovecot (Debian) ready."))]),
        ResponseFixture(name: "LOGINDISABLED capability", wire: "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED\r\n",
                        events: [.untagged(.capability(["IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+", "STARTTLS", "LOGINDISABLED"]))]),
        ResponseFixture(name: "tagged OK with capability", wire: "a1 OK [CAPABILITY IMAP4rev1 UIDPLUS MULTIAPPEND] Logged in\r\n",
                        events: [.tagged(TaggedResponse(tag: "a1", status: .ok, code: .capability(["IMAP4rev1", "UIDPLUS", "MULTIAPPEND"]), text: "Logged in"))]),
        ResponseFixture(name: "LIST INBOX atom", wire: "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: "/", name: "INBOX")))]),
        ResponseFixture(name: "LIST special use", wire: "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: "/", name: "Sent")))]),
        ResponseFixture(name: "LIST noselect quoted", wire: "* LIST (\\Noselect \\HasChildren) \".\" \"Old Mail\"\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\Noselect", "\\HasChildren"], delimiter: ".", name: "Old Mail")))]),
        ResponseFixture(name: "LIST with a literal name", wire: "* LIST () \"/\" {6}\r\nA \"b)c\r\n",
                        events: [.untagged(.list(ListEntry(attributes: [], delimiter: "/", name: "A \"b)c")))]),
        ResponseFixture(name: "LIST NIL delimiter", wire: "* LIST (\\HasNoChildren) NIL Flat\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: nil, name: "Flat")))]),
        ResponseFixture(name: "LIST modified UTF-7", wire: "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: "/", name: "Entw&APw-rfe")))]),
        ResponseFixture(name: "FLAGS", wire: "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
                        events: [.untagged(.flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]))]),
        ResponseFixture(name: "PERMANENTFLAGS", wire: "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n",
                        events: [.untagged(.status(.ok, code: .permanentFlags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*"]), text: "Flags permitted."))]),
        ResponseFixture(name: "EXISTS RECENT EXPUNGE", wire: "* 3 EXISTS\r\n* 0 RECENT\r\n* 2 EXPUNGE\r\n",
                        events: [.untagged(.exists(3)), .untagged(.recent(0)), .untagged(.expunge(2))]),
        ResponseFixture(name: "UIDVALIDITY UIDNEXT HIGHESTMODSEQ", wire: "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n* OK [HIGHESTMODSEQ 5] Highest\r\n",
                        events: [.untagged(.status(.ok, code: .uidValidity(1_700_000_000), text: "UIDs valid")),
                                 .untagged(.status(.ok, code: .uidNext(4), text: "Predicted next UID")),
                                 .untagged(.status(.ok, code: .highestModSeq(5), text: "Highest"))]),
        ResponseFixture(name: "SELECT completion", wire: "a2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
                        events: [.tagged(TaggedResponse(tag: "a2", status: .ok, code: .readWrite, text: "Select completed (0.001 + 0.000 secs)."))]),
        ResponseFixture(name: "SEARCH", wire: "* SEARCH 1 2 3\r\n* SEARCH\r\n* SEARCH 2 5 6 (MODSEQ 917162500)\r\n",
                        events: [.untagged(.search([1, 2, 3])), .untagged(.search([])), .untagged(.search([2, 5, 6]))]),
        ResponseFixture(name: "ESEARCH", wire: "* ESEARCH (TAG \"a3\") UID MIN 1 MAX 3 COUNT 3 ALL 1:3\r\n",
                        events: [.untagged(.esearch(tag: "a3", uid: true, items: ["MIN": "1", "MAX": "3", "COUNT": "3", "ALL": "1:3"]))]),
        ResponseFixture(name: "STATUS", wire: "* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1700000000)\r\n",
                        events: [.untagged(.mailboxStatus(mailbox: "INBOX", items: ["MESSAGES": 3, "UIDNEXT": 4, "UIDVALIDITY": 1_700_000_000]))]),
        ResponseFixture(name: "APPENDUID", wire: "a4 OK [APPENDUID 1700000000 4] Append completed.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a4", status: .ok, code: .appendUID(uidValidity: 1_700_000_000, uids: UIDSet([4...4])), text: "Append completed."))]),
        ResponseFixture(name: "APPENDUID for MULTIAPPEND", wire: "a5 OK [APPENDUID 38505 3955:3957] Append completed.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a5", status: .ok, code: .appendUID(uidValidity: 38505, uids: UIDSet([3955...3957])), text: "Append completed."))]),
        ResponseFixture(name: "COPYUID", wire: "a6 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
                        events: [.tagged(TaggedResponse(tag: "a6", status: .ok, code: .copyUID(uidValidity: 38505, source: UIDSet([304...304, 319...320]), destination: UIDSet([3956...3958])), text: "Done"))]),
        ResponseFixture(name: "TRYCREATE", wire: "a7 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n",
                        events: [.tagged(TaggedResponse(tag: "a7", status: .no, code: .tryCreate, text: "Mailbox doesn't exist: Foo"))]),
        ResponseFixture(name: "OVERQUOTA", wire: "a8 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n",
                        events: [.tagged(TaggedResponse(tag: "a8", status: .no, code: .overQuota, text: "Quota exceeded (mailbox for user is full)"))]),
        ResponseFixture(name: "AUTHENTICATIONFAILED", wire: "a9 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a9", status: .no, code: .other(name: "AUTHENTICATIONFAILED", text: nil), text: "Authentication failed."))]),
        ResponseFixture(name: "BAD without code", wire: "a10 BAD Error in IMAP command UID: Invalid arguments.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a10", status: .bad, code: nil, text: "Error in IMAP command UID: Invalid arguments."))]),
        ResponseFixture(name: "BYE", wire: "* BYE Server shutting down.\r\n", events: [.untagged(.status(.bye, code: nil, text: "Server shutting down."))]),
        ResponseFixture(name: "VANISHED", wire: "* VANISHED (EARLIER) 41,43:116\r\n* VANISHED 7\r\n",
                        events: [.untagged(.vanished(earlier: true, uids: UIDSet([41...41, 43...116]))), .untagged(.vanished(earlier: false, uids: UIDSet([7...7])))]),
        ResponseFixture(name: "continuations", wire: "+ idling\r\n+ \r\n+\r\n",
                        events: [.continuation("idling"), .continuation(""), .continuation("")]),
        ResponseFixture(name: "ENABLED and ID", wire: "* ENABLED CONDSTORE QRESYNC\r\n* ID (\"name\" \"Dovecot\")\r\n",
                        events: [.untagged(.enabled(["CONDSTORE", "QRESYNC"])), .untagged(.other("ID (\"name\" \"Dovecot\")"))]),
        // Gmail and Microsoft 365 shapes, as publicly documented.
        ResponseFixture(name: "Gmail greeting", wire: "* OK Gimap ready for requests from 192.0.2.1 h2mb123\r\n",
                        events: [.untagged(.status(.ok, code: nil, text: "Gimap ready for requests from 192.0.2.1 h2mb123"))]),
        ResponseFixture(name: "Gmail capability", wire: "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n",
                        events: [.untagged(.capability(["IMAP4rev1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA", "ID", "XLIST", "CHILDREN", "X-GM-EXT-1", "UIDPLUS", "COMPRESS=DEFLATE", "ENABLE", "MOVE", "CONDSTORE", "ESEARCH", "UTF8=ACCEPT", "LIST-EXTENDED", "LIST-STATUS", "LITERAL-", "SPECIAL-USE", "APPENDLIMIT=35651584"]))]),
        ResponseFixture(name: "Gmail All Mail", wire: "* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\All", "\\HasNoChildren"], delimiter: "/", name: "[Gmail]/All Mail")))]),
        ResponseFixture(name: "Gmail throttled", wire: "a1 NO [THROTTLED] Too many simultaneous connections.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a1", status: .no, code: .throttled, text: "Too many simultaneous connections."))]),
        ResponseFixture(name: "Microsoft 365 greeting", wire: "* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAwADEANwAuAG4AYQBtAHAA]\r\n",
                        events: [.untagged(.status(.ok, code: nil, text: "The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAwADEANwAuAG4AYQBtAHAA]"))]),
        ResponseFixture(name: "Microsoft 365 auth failure", wire: "a2 NO AUTHENTICATE failed.\r\n",
                        events: [.tagged(TaggedResponse(tag: "a2", status: .no, code: nil, text: "AUTHENTICATE failed."))]),
        // FETCH, streamed.
        ResponseFixture(name: "FETCH with a body", wire: "* 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {12}\r\nHello World!)\r\n",
                        events: [.fetchBegan(sequence: 1), .fetchAttribute(.uid(5)), .fetchAttribute(.rfc822Size(12)), .fetchAttribute(.flags(["\\Seen"])),
                                 .fetchAttribute(.internalDate("17-Jul-1996 02:44:25 -0700")), .fetchBodyBegan(section: "BODY[]", size: 12),
                                 .body("Hello World!"), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "FETCH attributes after the body", wire: "* 2 FETCH (BODY[] {3}\r\nabc UID 7 FLAGS ())\r\n",
                        events: [.fetchBegan(sequence: 2), .fetchBodyBegan(section: "BODY[]", size: 3), .body("abc"), .fetchBodyEnded,
                                 .fetchAttribute(.uid(7)), .fetchAttribute(.flags([])), .fetchEnded]),
        ResponseFixture(name: "FETCH body that looks like responses", wire: "* 3 FETCH (UID 8 BODY[] {27}\r\n)\r\n* 4 FETCH (UID 9)\r\na1 OK)\r\n",
                        events: [.fetchBegan(sequence: 3), .fetchAttribute(.uid(8)), .fetchBodyBegan(section: "BODY[]", size: 27),
                                 .body(")\r\n* 4 FETCH (UID 9)\r\na1 OK"), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "FETCH MODSEQ and Gmail ids", wire: "* 3 FETCH (UID 8 MODSEQ (12345) X-GM-MSGID 1278455344230334865 FLAGS (\\Seen $Forwarded))\r\n",
                        events: [.fetchBegan(sequence: 3), .fetchAttribute(.uid(8)), .fetchAttribute(.modSeq(12345)),
                                 .fetchAttribute(.gmailMessageID(1_278_455_344_230_334_865)), .fetchAttribute(.flags(["\\Seen", "$Forwarded"])), .fetchEnded]),
        ResponseFixture(name: "unsolicited FLAGS fetch", wire: "* 4 FETCH (FLAGS (\\Deleted))\r\n",
                        events: [.fetchBegan(sequence: 4), .fetchAttribute(.flags(["\\Deleted"])), .fetchEnded]),
        // NIL is no content, not an empty message (which `{0}` is, below).
        ResponseFixture(name: "FETCH NIL body", wire: "* 5 FETCH (UID 9 BODY[] NIL)\r\n",
                        events: [.fetchBegan(sequence: 5), .fetchAttribute(.uid(9)), .fetchBodyNil(section: "BODY[]"), .fetchEnded]),
        ResponseFixture(name: "FETCH header section", wire: "* 6 FETCH (UID 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {19}\r\nMessage-ID: <a@b>\r\n)\r\n",
                        events: [.fetchBegan(sequence: 6), .fetchAttribute(.uid(10)), .fetchBodyBegan(section: "BODY[HEADER.FIELDS (MESSAGE-ID)]", size: 19),
                                 .body("Message-ID: <a@b>\r\n"), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "FETCH empty literal", wire: "* 7 FETCH (UID 11 BODY[] {0}\r\n)\r\n",
                        events: [.fetchBegan(sequence: 7), .fetchAttribute(.uid(11)), .fetchBodyBegan(section: "BODY[]", size: 0), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "FETCH unknown item kept", wire: "* 8 FETCH (UID 12 X-GM-LABELS (\\Inbox \"Old stuff\"))\r\n",
                        events: [.fetchBegan(sequence: 8), .fetchAttribute(.uid(12)), .fetchAttribute(.other(name: "X-GM-LABELS", value: "(\\Inbox \"Old stuff\")")), .fetchEnded]),
    ]

    @Test(arguments: fixtures)
    func parsesWhole(_ f: ResponseFixture) throws {
        #expect(try parseAll(f.wire) == f.events)
    }

    @Test(arguments: fixtures)
    func parsesOneByteAtATime(_ f: ResponseFixture) throws {
        #expect(try parseAll(f.wire, chunk: 1) == f.events)
        #expect(try parseAll(f.wire, chunk: 7) == f.events)
    }

    /// A line that has not ended stays in the buffer; a line that announces a literal is taken
    /// by the parser at once, and the response is finished by the bytes that follow it.
    @Test func needMoreBytesLeavesTheBufferAsItWas() throws {
        var parser = IMAPResponseParser()
        var buffer = ByteBuffer(string: "* 3 EXIS")
        #expect(try parser.next(&buffer) == nil)
        #expect(buffer.readableBytes == 8)
        buffer.writeString("TS\r\n")
        #expect(try parser.next(&buffer) == .untagged(.exists(3)))
        #expect(buffer.readableBytes == 0)

        buffer.writeString("* LIST () \"/\" {5}\r\nAr")
        #expect(try parser.next(&buffer) == nil)
        #expect(buffer.readableBytes == 2)
        buffer.writeString("chi\r\n")
        #expect(try parser.next(&buffer) == .untagged(.list(ListEntry(attributes: [], delimiter: "/", name: "Archi"))))
        #expect(buffer.readableBytes == 0)
    }

    @Test func bodiesAreSlicesNotCopiesAndArriveAsTheyCome() throws {
        var parser = IMAPResponseParser()
        var buffer = ByteBuffer(string: "* 1 FETCH (BODY[] {10}\r\n01234")
        var events: [IMAPResponseEvent] = []
        while let e = try parser.next(&buffer) { events.append(e) }
        // The first half of the body is handed on before the rest has arrived.
        #expect(events == [.fetchBegan(sequence: 1), .fetchBodyBegan(section: "BODY[]", size: 10), .body("01234")])
        buffer.writeString("56789)\r\n")
        events = []
        while let e = try parser.next(&buffer) { events.append(e) }
        #expect(events == [.body("56789"), .fetchBodyEnded, .fetchEnded])
    }

    @Test func aLineOverTheLimitIsRefused() throws {
        let long = "* OK " + String(repeating: "x", count: 200) + "\r\n"
        #expect(throws: IMAPParseError.self) { try parseAll(long, limits: .init(maxLineLength: 100)) }
        // Also when the line has not ended yet: the parser does not wait for ever.
        #expect(throws: IMAPParseError.self) { try parseAll(String(long.dropLast(2)), chunk: 50, limits: .init(maxLineLength: 100)) }
        #expect(try parseAll(long, limits: .init(maxLineLength: 300)).count == 1)
    }

    @Test func aLiteralOverTheLimitIsRefused() {
        #expect(throws: IMAPParseError.self) { try parseAll("* LIST () \"/\" {5000}\r\n", limits: .init(maxLiteralSize: 4096)) }
        #expect(throws: IMAPParseError.self) { try parseAll("* 1 FETCH (X-THING {5000}\r\n", limits: .init(maxLiteralSize: 4096)) }
    }

    @Test func aBodyOverTheLimitIsRefused() {
        #expect(throws: IMAPParseError.self) { try parseAll("* 1 FETCH (BODY[] {5000}\r\n", limits: .init(maxBodySize: 4096)) }
    }

    /// Nesting past the limit is not read: the response, whole on its line, is passed over.
    @Test func nestingOverTheLimitIsRefused() throws {
        let deep = "* 1 FETCH (X-DEEP " + String(repeating: "(", count: 40) + String(repeating: ")", count: 40) + ")\r\n"
        let events = try parseAll(deep, limits: .init(maxNesting: 32))
        guard case let .unreadable(u)? = events.first, events.count == 1 else { Issue.record("\(events)"); return }
        #expect(u.fetchSequence == 1 && u.problem.contains("nesting"))
        #expect(try parseAll(deep, limits: .init(maxNesting: 64)).count == 3)
    }

    /// A tagged response that cannot be read ends the session: it may be the end of a command.
    @Test(arguments: [
        "a1 MAYBE done\r\n",
        "a1\r\n",
        "[COPYUID 55 31 6]\r\n",
    ])
    func malformedTaggedResponsesAreTypedErrors(_ wire: String) {
        #expect(throws: IMAPParseError.self) { try parseAll(wire) }
    }

    /// An untagged response that cannot be read is passed over, and what follows it is read.
    @Test(arguments: [
        ("* LIST (\\X \"/\" INBOX\r\n", nil),
        ("* 1 FETCH (UID x)\r\n", 1),
        ("* 1 FETCH (UID 5\r\n", 1),
        ("* STATUS INBOX (MESSAGES)\r\n", nil),
        ("* 1 FETCH (UID 99999999999)\r\n", 1),
        ("* 2 FETCH\r\n", 2),
        ("* LIST () \"/\" INBOX trailing words\r\n", nil),
        ("* SEARCH 1 x\r\n", nil),
        ("* ESEARCH (TAG \"a1\") UID ALL 1:x\r\n", nil),
    ] as [(String, UInt32?)])
    func malformedUntaggedResponsesArePassedOver(_ wire: String, fetch: UInt32?) throws {
        let events = try parseAll(wire + "* 3 EXISTS\r\n")
        #expect(events.count == 2)
        guard case let .unreadable(u)? = events.first else { Issue.record("\(events)"); return }
        #expect(u.fetchSequence == fetch)
        #expect(events.last == .untagged(.exists(3)))
        #expect(try parseAll(wire + "* 3 EXISTS\r\n", chunk: 3) == events)
    }

    /// Seeded random mutations of every fixture, fed in random chunks: the parser may refuse
    /// them, but it never crashes and never loops.
    @Test func survivesMutatedInput() throws {
        var rng = SystemRandomNumberGenerator.Seeded(seed: 2026)
        let corpus = Self.fixtures.map { Array($0.wire.utf8) }
        let interesting = Array("{}()[]\"\\\r\n 0123456789*+".utf8)
        for round in 0..<3000 {
            var bytes = corpus[round % corpus.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                guard !bytes.isEmpty else { break }
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[at] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                default: bytes = Array(bytes[..<at])
                }
            }
            _ = try? parseAll(bytes, chunk: 1 + Int(rng.next() % 9),
                              limits: .init(maxLineLength: 512, maxLiteralSize: 512, maxBodySize: 4096, maxNesting: 8))
        }
    }
}

extension SystemRandomNumberGenerator {
    /// A small deterministic generator (SplitMix64) for repeatable fuzz rounds.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

