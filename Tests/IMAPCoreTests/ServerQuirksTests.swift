import IMAPCore
import NIOCore
import Testing

/// What real servers send that the grammar does not quite allow, each read as the server meant
/// it: where a fetcher needs the value, the value; where it does not, passed over without ending
/// the session. Sources: MailKit's recorded sessions and changelog, ruby/net-imap's
/// `quirky_behaviors.yml`, and the servers' own replies quoted in issue 19.
struct ServerQuirksTests {
    static let quirks: [ResponseFixture] = [
        ResponseFixture(name: "Gmail STATUS with SIZE, APPENDLIMIT NIL and MAILBOXID",
                        wire: "* STATUS \"INBOX\" (HIGHESTMODSEQ 41234 MESSAGES 60 APPENDLIMIT NIL UIDNEXT 410 SIZE 1024 MAILBOXID (d0f3b017-d3ec-40aa-9bb9-66c1aeccbb24))\r\n",
                        events: [.untagged(.mailboxStatus(mailbox: "INBOX", items: ["HIGHESTMODSEQ": 41234, "MESSAGES": 60, "UIDNEXT": 410, "SIZE": 1024]))]),
        ResponseFixture(name: "STATUS with a trailing space and an unquoted +Folder",
                        wire: "* STATUS +Folder (UIDNEXT 1 UIDVALIDITY 1234) \r\n",
                        events: [.untagged(.mailboxStatus(mailbox: "+Folder", items: ["UIDNEXT": 1, "UIDVALIDITY": 1234]))]),
        ResponseFixture(name: "LIST with an empty delimiter",
                        wire: "* LIST (\\HasNoChildren) \"\" \"Folder2\"\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: nil, name: "Folder2")))]),
        ResponseFixture(name: "LIST with an unquoted bracketed name",
                        wire: "* LIST (\\HasNoChildren) \".\" [Gmail]\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: ".", name: "[Gmail]")))]),
        ResponseFixture(name: "Exchange folder name holding a tab, unquoted",
                        wire: "* LIST (\\HasNoChildren) \"/\" Projects\t2024\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: "/", name: "Projects\t2024")))]),
        ResponseFixture(name: "LIST-EXTENDED data after the name",
                        wire: "* LIST (\\Subscribed) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
                        events: [.untagged(.list(ListEntry(attributes: ["\\Subscribed"], delimiter: "/", name: "Foo")))]),
        ResponseFixture(name: "Gmail flags holding brackets",
                        wire: "* FLAGS (\\Seen $Junk OIB-Seen-INBOX OIB-Seen-[Google Mail]/Alle Nachrichten)\r\n",
                        events: [.untagged(.flags(["\\Seen", "$Junk", "OIB-Seen-INBOX", "OIB-Seen-[Google", "Mail]/Alle", "Nachrichten"]))]),
        ResponseFixture(name: "X-GM-LABELS with bracketed atoms, escapes and a literal",
                        wire: "* 1 FETCH (X-GM-LABELS (\\Inbox [Gmail]/Sent \"a\\\"b\" \"c\\\\d\" {7}\r\nx (y) z) UID 1)\r\n",
                        events: [.fetchBegan(sequence: 1),
                                 .fetchAttribute(.other(name: "X-GM-LABELS", value: "(\\Inbox [Gmail]/Sent \"a\\\"b\" \"c\\\\d\" \"x (y) z\")")),
                                 .fetchAttribute(.uid(1)), .fetchEnded]),
        ResponseFixture(name: "untagged COPYUID without a status (Exchange, home.pl)",
                        wire: "* [COPYUID 1 2 3]\r\n* 1 EXPUNGE\r\n",
                        events: [.untagged(.status(.ok, code: .copyUID(uidValidity: 1, source: UIDSet([2...2]), destination: UIDSet([3...3])), text: "")),
                                 .untagged(.expunge(1))]),
        ResponseFixture(name: "Zoho MODSEQ (-1)",
                        wire: "* 40 FETCH (MODSEQ (-1) FLAGS (\\Recent \\Seen) UID 336)\r\n",
                        events: [.fetchBegan(sequence: 40), .fetchAttribute(.other(name: "MODSEQ", value: "(-1)")),
                                 .fetchAttribute(.flags(["\\Recent", "\\Seen"])), .fetchAttribute(.uid(336)), .fetchEnded]),
        ResponseFixture(name: "literal8 body (RFC 3516)",
                        wire: "* 2 FETCH (UID 8 BINARY[] ~{5}\r\na\u{0}b\r\n)\r\n",
                        events: [.fetchBegan(sequence: 2), .fetchAttribute(.uid(8)), .fetchBodyBegan(section: "BINARY[]", size: 5),
                                 .body("a\u{0}b\r\n"), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "Domino's parentheses around ENVELOPE",
                        wire: "* 2 FETCH (UID 14935 (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)) BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0 NIL))\r\n",
                        events: [.fetchBegan(sequence: 2), .fetchAttribute(.uid(14935)),
                                 .fetchAttribute(.other(name: "ENVELOPE", value: "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")),
                                 .fetchAttribute(.other(name: "BODYSTRUCTURE", value: "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0 NIL)")),
                                 .fetchEnded]),
        ResponseFixture(name: "a literal inside ENVELOPE, then the body",
                        wire: "* 3 FETCH (UID 9 ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" {12}\r\nSubject\r\nTwo NIL NIL NIL NIL NIL NIL NIL \"<m@x>\") BODY[] {4}\r\nbody)\r\n",
                        events: [.fetchBegan(sequence: 3), .fetchAttribute(.uid(9)),
                                 .fetchAttribute(.other(name: "ENVELOPE", value: "(\"Mon, 1 Jan 2024 10:00:00 +0000\" {12}\r\nSubject\r\nTwo NIL NIL NIL NIL NIL NIL NIL \"<m@x>\")")),
                                 .fetchBodyBegan(section: "BODY[]", size: 4), .body("body"), .fetchBodyEnded, .fetchEnded]),
        ResponseFixture(name: "outlook.com's extra space in ENVELOPE address lists",
                        wire: "* 24 FETCH (UID 60 RFC822.SIZE 49051 ENVELOPE (\"Mon, 24 May 2021 09:47:50 +0000\" \"Zoom\" ((\"A\" NIL \"a\" \"b.test\")) NIL NIL ((\"r\" NIL \"r\" \"h.test\") (\"s\" NIL \"s\" \"k.test\")) NIL NIL NIL \"<a@b>\"))\r\n",
                        events: [.fetchBegan(sequence: 24), .fetchAttribute(.uid(60)), .fetchAttribute(.rfc822Size(49051)),
                                 .fetchAttribute(.other(name: "ENVELOPE", value: "(\"Mon, 24 May 2021 09:47:50 +0000\" \"Zoom\" ((\"A\" NIL \"a\" \"b.test\")) NIL NIL ((\"r\" NIL \"r\" \"h.test\") (\"s\" NIL \"s\" \"k.test\")) NIL NIL NIL \"<a@b>\")")),
                                 .fetchEnded]),
        ResponseFixture(name: "two spaces after the star",
                        wire: "*  OK [UIDNEXT 4] Predicted next UID\r\n*  5 FETCH (UID 9)\r\n*  3 EXISTS\r\n",
                        events: [.untagged(.status(.ok, code: .uidNext(4), text: "Predicted next UID")),
                                 .fetchBegan(sequence: 5), .fetchAttribute(.uid(9)), .fetchEnded, .untagged(.exists(3))]),
        ResponseFixture(name: "an unknown FETCH item, with a value or none",
                        wire: "* 1 FETCH (UID 1 XAOL.SPAM.REASON 0 XAOL-PAREN-LIST (XAOL-TOKEN-PARAM XAOL-TOKEN-VALUE) X-EMPTY)\r\n",
                        events: [.fetchBegan(sequence: 1), .fetchAttribute(.uid(1)), .fetchAttribute(.other(name: "XAOL.SPAM.REASON", value: "0")),
                                 .fetchAttribute(.other(name: "XAOL-PAREN-LIST", value: "(XAOL-TOKEN-PARAM XAOL-TOKEN-VALUE)")),
                                 .fetchAttribute(.other(name: "X-EMPTY", value: "")), .fetchEnded]),
        ResponseFixture(name: "Yandex: a body section with no value at all",
                        wire: "* 1 FETCH (UID 3016 BODY[2] )\r\n",
                        events: [.fetchBegan(sequence: 1), .fetchAttribute(.uid(3016)), .fetchBodyNil(section: "BODY[2]"), .fetchEnded]),
        ResponseFixture(name: "a status text ending in what looks like a literal",
                        wire: "a7 NO [TRYCREATE] Mailbox doesn't exist: Archive {2024}\r\n* OK Still here {5}\r\na8 OK done\r\n",
                        events: [.tagged(TaggedResponse(tag: "a7", status: .no, code: .tryCreate, text: "Mailbox doesn't exist: Archive {2024}")),
                                 .untagged(.status(.ok, code: nil, text: "Still here {5}")),
                                 .tagged(TaggedResponse(tag: "a8", status: .ok, code: nil, text: "done"))]),
        ResponseFixture(name: "Exchange's resp-text-code that is no code",
                        wire: "RUBY0001 OK [Error=\"Microsoft.Exchange.Data.Storage.WrongServerException: Cross Server access is not allowed\" Proxy=X.PROD.OUTLOOK.COM:1993:SSL Service=Imap4] AUTHENTICATE completed.\r\n",
                        events: [.tagged(TaggedResponse(tag: "RUBY0001", status: .ok,
                                                        code: .other(name: "ERROR=\"MICROSOFT.EXCHANGE.DATA.STORAGE.WRONGSERVEREXCEPTION:",
                                                                     text: "Cross Server access is not allowed\" Proxy=X.PROD.OUTLOOK.COM:1993:SSL Service=Imap4"),
                                                        text: "AUTHENTICATE completed."))]),
        ResponseFixture(name: "an untagged response nobody knows",
                        wire: "* NOOP froopy snood\r\n* 86 NOOP froopy snood\r\n",
                        events: [.untagged(.other("NOOP froopy snood")), .untagged(.other("86 NOOP froopy snood"))]),
    ]

    @Test(arguments: quirks)
    func readsWhatTheServerMeant(_ f: ResponseFixture) throws {
        #expect(try parseAll(f.wire) == f.events)
        #expect(try parseAll(f.wire, chunk: 1) == f.events)
        #expect(try parseAll(f.wire, chunk: 5) == f.events)
    }

    /// A body sent as NIL and an empty literal are told apart: one has no content, the other is
    /// an empty message.
    @Test func aNilBodyIsNotAnEmptyMessage() throws {
        let missing = try parseAll("* 5 FETCH (UID 9 BODY[] NIL)\r\n")
        let empty = try parseAll("* 5 FETCH (UID 9 BODY[] {0}\r\n)\r\n")
        #expect(missing != empty)
        #expect(missing.contains(.fetchBodyNil(section: "BODY[]")))
        #expect(!missing.contains { if case .fetchBodyBegan = $0 { return true } else { return false } })
        #expect(empty.contains(.fetchBodyBegan(section: "BODY[]", size: 0)))
    }

    /// What was an escape stays one when the value is written back.
    @Test func labelsKeepTheirEscapes() throws {
        let events = try parseAll("* 1 FETCH (X-GM-LABELS (\"a\\\"b\"))\r\n")
        #expect(events.contains(.fetchAttribute(.other(name: "X-GM-LABELS", value: "(\"a\\\"b\")"))))
        #expect(!events.contains(.fetchAttribute(.other(name: "X-GM-LABELS", value: "(\"a\"b\")"))))
    }
}
