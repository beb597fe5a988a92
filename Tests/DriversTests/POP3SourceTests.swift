import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import MailTransport
import Testing

/// `POP3Source` against a scripted server, each conversation as Dovecot would hold it (RFC 1939,
/// RFC 2449 for CAPA and PIPELINING): STAT, LIST and UIDL for the listing, TOP for keys without
/// UIDL, pipelined RETR with dot-unstuffing, an -ERR to one RETR, and DELE committed by QUIT.
@Suite(.timeLimit(.minutes(1))) struct POP3SourceTests {
    typealias Line = TranscriptServer.Line

    static let messages = [
        "From: anne@example.org\r\nSubject: one\r\n\r\nHello Jean.\r\n",
        // Lines that begin with a dot: one is only a dot, which unstuffed must not end the message.
        "From: bob@example.org\r\nSubject: dots\r\n\r\n.line\r\n..\r\n.\r\n\r\nend\r\n",
        "From: carol@example.org\r\nSubject: three\r\n\r\nÉté.\r\n",
    ]
    static let uidls = ["000000017f3b2a1c", "000000027f3b2a1c", "000000037f3b2a1c"]

    /// CAPA with PIPELINING, then AUTH PLAIN.
    static func opening(_ capabilities: [String] = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER",
                                                    "SASL PLAIN LOGIN"]) -> [Line] {
        [.server("+OK Dovecot ready."), .client("CAPA"), .server("+OK")] + capabilities.map { .server($0) } + [
            .server("."),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK Logged in."),
        ]
    }

    /// A message as RETR's answer carries it: `+OK`, its lines dot-stuffed, and the final `.`.
    static func retrieved(_ message: String) -> [Line] {
        var lines = message.components(separatedBy: "\r\n")
        lines.removeLast()  // after the last CRLF
        return [.server("+OK \(message.utf8.count) octets")] + lines.map { .server($0.hasPrefix(".") ? "." + $0 : $0) } + [.server(".")]
    }

    static var listed: [ListedMessage] {
        messages.indices.map { ListedMessage(ident: uidls[$0], size: messages[$0].utf8.count, locator: .number($0 + 1)) }
    }

    static func source(_ endpoint: ServerEndpoint) throws -> POP3Source {
        POP3Source(url: try MailURL.parse("pop3://jean@127.0.0.1:\(endpoint.port)"), endpoint: endpoint, login: DriverTranscript.jean,
                   logger: DriverTranscript.logger)
    }

    /// STAT for what the maildrop holds, LIST for sizes and UIDL for keys, in pages.
    @Test func listsWithStatListAndUIDL() async throws {
        let sizes = Self.messages.map(\.utf8.count)
        let lines: [Line] = Self.opening() + [
            .client("STAT"),
            .server("+OK 3 \(sizes.reduce(0, +))"),
            .client("LIST"),
            .server("+OK 3 messages:"),
        ] + sizes.indices.map { .server("\($0 + 1) \(sizes[$0])") } + [
            .server("."),
            .client("UIDL"),
            .server("+OK"),
        ] + Self.uidls.indices.map { .server("\($0 + 1) \(Self.uidls[$0])") } + [
            .server("."),
            .client("QUIT"),
            .server("+OK Logging out."),
        ]
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let info = try await source.select(mailbox: "INBOX")
            #expect(info.expectedMessages == 3 && info.expectedBytes == sizes.reduce(0, +))
            var pages: [[ListedMessage]] = []
            try await source.list(mailbox: "INBOX", pageSize: 2, after: nil) { pages.append($0) }
            #expect(pages.map { $0.map(\.ident) } == [Array(Self.uidls[0..<2]), [Self.uidls[2]]])
            #expect(pages.flatMap { $0 } == Self.listed)
            #expect(try await source.close().isEmpty)
        }
    }

    /// Without UIDL, each message is keyed by the SHA-256 of its header (`TOP n 0`), and two with
    /// the same header are told apart by their rank.
    @Test func withoutUIDLMessagesAreKeyedByTheirHeaders() async throws {
        let header = "From: anne@example.org\r\nSubject: same\r\n\r\n"
        let lines: [Line] = Self.opening(["CAPA", "TOP", "RESP-CODES", "USER", "SASL PLAIN"]) + [
            .client("LIST"),
            .server("+OK 2 messages:"), .server("1 120"), .server("2 130"), .server("."),
            .client("UIDL"),
            .server("-ERR Unknown command: UIDL"),
            .client("TOP 1 0"),
            .server("+OK"), .server("From: anne@example.org"), .server("Subject: same"), .server(""), .server("."),
            .client("TOP 2 0"),
            .server("+OK"), .server("From: anne@example.org"), .server("Subject: same"), .server(""), .server("."),
            .client("QUIT"),
            .server("+OK Logging out."),
        ]
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            var all: [ListedMessage] = []
            try await source.list(mailbox: "INBOX", pageSize: 100, after: nil) { all += $0 }
            let digest = DriverTranscript.sha256(header)
            #expect(all.map(\.ident) == ["hdr:\(digest)/0", "hdr:\(digest)/1"])
            #expect(all.map(\.size) == [120, 130])
            _ = try await source.close()
        }
    }

    /// A broken server's repeated UIDL keeps both messages, and the second one's key is of a form
    /// no server's id can take: a mailbox holding "abc", "abc" and "abc#2" (or a later "abc#2")
    /// must not give two messages one key, or the ledger would call the third delivered unseen.
    @Test func repeatedUniqueIDsGetKeysNoRealIDCanHave() async throws {
        let ids = ["abc", "abc", "abc#2", "abc", "\u{FFFD}abc"]
        let lines: [Line] = Self.opening() + [
            .client("LIST"),
            .server("+OK 5 messages:"),
        ] + ids.indices.map { .server("\($0 + 1) 100") } + [
            .server("."),
            .client("UIDL"),
            .server("+OK"),
        ] + ids.indices.map { .server("\($0 + 1) \(ids[$0])") } + [
            .server("."),
            .client("QUIT"),
            .server("+OK Logging out."),
        ]
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            var all: [ListedMessage] = []
            try await source.list(mailbox: "INBOX", pageSize: 100, after: nil) { all += $0 }
            let idents = all.map(\.ident)
            #expect(Set(idents).count == ids.count, "keys collide: \(idents)")
            // Ids seen once keep the key they always had, so existing ledgers still match them.
            #expect(idents[0] == "abc" && idents[2] == "abc#2")
            _ = try await source.close()
        }
    }

    /// The batch's RETRs go in one write (PIPELINING); each answer is unstuffed into its own spool
    /// ("..line" is ".line", and a line of ".." is a message line ".", not the end), byte for byte,
    /// and the final "." is not part of the message.
    @Test func retrievesPipelinedAndUnstuffsDots() async throws {
        let lines: [Line] = Self.opening() + [
            .client("RETR 1"),
        ] + Self.retrieved(Self.messages[0]) + [
            .client("RETR 2"),
        ] + Self.retrieved(Self.messages[1]) + [
            .client("RETR 3"),
        ] + Self.retrieved(Self.messages[2]) + [
            .client("QUIT"),
            .server("+OK Logging out."),
        ]
        #expect(Self.retrieved(Self.messages[1]).map(\.description).contains("S: ..line"))
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(results.map(\.listed) == Self.listed)
            let spools = DriverTranscript.spooled(results).compactMap { $0 }
            try #require(spools.count == 3)
            #expect(try spools.map(DriverTranscript.text) == Self.messages)
            #expect(spools.map(\.size) == Self.messages.map(\.utf8.count))
            #expect(spools.map(\.sha256) == Self.messages.map(DriverTranscript.sha256))
            _ = try await source.close()
        }
    }

    /// An -ERR to one RETR fails that message alone (to be tried again), with the server's words;
    /// the messages before and after it are spooled.
    @Test func anErrToOneRetrFailsThatMessageAlone() async throws {
        let lines: [Line] = Self.opening() + [
            .client("RETR 1"),
        ] + Self.retrieved(Self.messages[0]) + [
            .client("RETR 2"),
            .server("-ERR [SYS/TEMP] Couldn't open message 2 for reading"),
            .client("RETR 3"),
        ] + Self.retrieved(Self.messages[2]) + [
            .client("QUIT"),
            .server("+OK Logging out."),
        ]
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(results).map { try $0.map(DriverTranscript.text) }
                    == [Self.messages[0], nil, Self.messages[2]])
            let failure = try #require(DriverTranscript.failures(results)[1])
            #expect(failure.errorClass == .temporary)
            #expect(failure.message.contains("RETR 2 failed: -ERR [SYS/TEMP] Couldn't open message 2 for reading"))
            _ = try await source.close()
        }
    }

    /// A connection cut in the middle of a pipelined batch hands on the messages read whole and
    /// fails the rest as temporary, so a link that drops every few megabytes still makes progress;
    /// the message cut short is not spooled, and no QUIT is tried on the dead connection.
    @Test func aCutMidBatchHandsOnTheMessagesReadWhole() async throws {
        let sizes = Self.messages.map(\.utf8.count)
        let lines: [Line] = Self.opening() + [
            .client("LIST"),
            .server("+OK 3 messages:"),
        ] + sizes.indices.map { .server("\($0 + 1) \(sizes[$0])") } + [
            .server("."),
            .client("UIDL"),
            .server("+OK"),
        ] + Self.uidls.indices.map { .server("\($0 + 1) \(Self.uidls[$0])") } + [
            .server("."),
            .client("RETR 1"),
        ] + Self.retrieved(Self.messages[0]) + [
            .client("RETR 2"),
            .server("+OK \(sizes[1]) octets"),
            .serverBytes("From: bob@example.org\r\nSubj"),
            .serverCloses,
        ]
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            var listed: [ListedMessage] = []
            try await source.list(mailbox: "INBOX", pageSize: 100, after: nil) { listed += $0 }
            let results = try await source.fetch(listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(results).map { try $0.map(DriverTranscript.text) } == [Self.messages[0], nil, nil])
            #expect(DriverTranscript.failures(results).map { $0?.errorClass } == [nil, .temporary, .temporary])
            #expect(try await source.close().isEmpty)
        }
    }

    /// How DELE and QUIT are answered, and what `close()` then reports as disposed.
    struct Deleting: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var lines: [Line]
        /// What `close()` returns; nil when it throws `quitFailed`.
        var disposed: [String: [String]]?
    }

    static let deletions: [Deleting] = [
        Deleting(testDescription: "DELEs accepted, QUIT +OK: both reported", lines: [
            .client("DELE 1"), .server("+OK Marked to be deleted."),
            .client("DELE 3"), .server("+OK Marked to be deleted."),
            .client("QUIT"), .server("+OK Logging out, messages deleted."),
        ], disposed: ["INBOX": [uidls[0], uidls[2]]]),
        Deleting(testDescription: "one DELE refused: only the accepted one reported", lines: [
            .client("DELE 1"), .server("+OK Marked to be deleted."),
            .client("DELE 3"), .server("-ERR Message is deleted."),
            .client("QUIT"), .server("+OK Logging out, messages deleted."),
        ], disposed: ["INBOX": [uidls[0]]]),
        Deleting(testDescription: "QUIT refused: nothing was deleted, and close() says so", lines: [
            .client("DELE 1"), .server("+OK Marked to be deleted."),
            .client("DELE 3"), .server("+OK Marked to be deleted."),
            .client("QUIT"), .server("-ERR some deleted messages not removed"),
        ], disposed: nil),
    ]

    /// DELE (pipelined) reports nothing by itself: the deletions happen at QUIT (RFC 1939 §6),
    /// and `close()` reports the accepted ones only when QUIT is answered +OK.
    @Test(arguments: deletions) func deletesAtQuit(_ fixture: Deleting) async throws {
        try await DriverTranscript.play(Self.opening() + fixture.lines) { endpoint, server in
            let source = try Self.source(endpoint)
            let kept = Self.listed
            #expect(try await source.dispose([kept[0], kept[2]], mailbox: "INBOX", how: .delete) == [])
            if let disposed = fixture.disposed {
                #expect(try await source.close() == disposed)
            } else {
                do {
                    let reported = try await source.close()
                    Issue.record("a refused QUIT reported \(reported)")
                } catch let POP3Error.quitFailed(s, detail) {
                    #expect(s == server)
                    #expect(detail.contains("some deleted messages not removed"))
                }
            }
        }
    }
}
