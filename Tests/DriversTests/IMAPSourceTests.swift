import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import IMAPCore
import MailMessage
import MailTransport
import Testing

/// `IMAPSource` against a scripted server, each conversation as Dovecot would hold it (RFC 3501,
/// RFC 9051, RFC 4315 for UIDPLUS): folders listed and their names decoded, a mailbox examined and
/// listed with `UID FETCH n:*`, bodies fetched with `BODY.PEEK[]` into spools, a fetch the server
/// refuses in part or cuts off, and the disposals with and without UIDPLUS.
@Suite(.timeLimit(.minutes(1))) struct IMAPSourceTests {
    typealias Line = TranscriptServer.Line

    static let first = "From: anne@example.org\r\nTo: jean@example.org\r\nSubject: one\r\n\r\nHello Jean.\r\n"
    /// 8-bit, and a line that looks like a literal's announcement and one that looks like the end
    /// of the FETCH: only the literal's length says where the message ends.
    static let second = "From: bob@example.org\r\nSubject: two\r\n\r\n{12}\r\n) is not the end\r\nÉté\r\n"
    static let firstDate = Date(timeIntervalSince1970: 837_596_665)  // 17-Jul-1996 02:44:25 -0700

    /// Logged in with AUTHENTICATE PLAIN and SASL-IR; the capabilities after login are `capabilities`.
    static func opening(_ capabilities: String = "IMAP4rev1 SASL-IR LITERAL+ UIDPLUS IDLE") -> [Line] {
        [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS LITERAL+ AUTH=PLAIN] Dovecot ready."),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 OK [CAPABILITY \(capabilities)] Logged in"),
        ]
    }

    /// The answer to `EXAMINE INBOX` (or `SELECT INBOX` when not `readOnly`), tagged `tag`.
    static func opened(_ tag: String, exists: Int, readOnly: Bool = true) -> [Line] {
        [
            .client("\(tag) \(readOnly ? "EXAMINE" : "SELECT") INBOX"),
            .server("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)"),
            .server(readOnly ? "* OK [PERMANENTFLAGS ()] Read-only mailbox."
                             : "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] Flags permitted."),
            .server("* \(exists) EXISTS"),
            .server("* 0 RECENT"),
            .server("* OK [UIDVALIDITY 1700000000] UIDs valid"),
            .server("* OK [UIDNEXT 9] Predicted next UID"),
            .server("\(tag) OK [\(readOnly ? "READ-ONLY" : "READ-WRITE")] \(readOnly ? "Examine" : "Select") completed (0.001 + 0.000 secs)."),
        ]
    }

    static func logout(_ tag: String) -> [Line] {
        [.client("\(tag) LOGOUT"), .server("* BYE Logging out"), .server("\(tag) OK Logout completed.")]
    }

    /// A message as a FETCH response carries it: `* n FETCH (UID u BODY[] {size}`, its bytes, `)`.
    static func fetched(_ sequence: Int, uid: UInt32, _ message: String) -> [Line] {
        [.server("* \(sequence) FETCH (UID \(uid) BODY[] {\(message.utf8.count)}"), .serverBytes(message), .server(")")]
    }

    /// The two messages as the listing below gives them.
    static var listed: [ListedMessage] {
        var seen = MessageFlags()
        seen.seen = true
        return [ListedMessage(ident: "7", size: first.utf8.count, flags: seen, internalDate: firstDate, locator: .uid(7)),
                ListedMessage(ident: "8", size: second.utf8.count, locator: .uid(8))]
    }

    static func source(_ endpoint: ServerEndpoint, readOnly: Bool = true, folder: String = "") throws -> IMAPSource {
        IMAPSource(url: try MailURL.parse("imap://jean@127.0.0.1:\(endpoint.port)\(folder.isEmpty ? "" : "/" + folder)"),
                   endpoint: endpoint, login: DriverTranscript.jean, readOnly: readOnly, logger: DriverTranscript.logger)
    }

    /// LIST gives the selectable folders with `/` for the server's `.` and modified UTF-7 undone,
    /// INBOX first; EXAMINE gives UIDVALIDITY and the count; `UID FETCH 1:*` lists every message
    /// with its size, flags (`\Recent` dropped, keywords kept) and INTERNALDATE, in pages; an
    /// incremental listing asks for the UIDs above the mark and skips the highest message, which
    /// `n:*` names even when it is below n (RFC 3501 §6.4.8).
    @Test func listsFoldersAndMessagesIncrementally() async throws {
        let size1 = Self.first.utf8.count, size2 = Self.second.utf8.count
        let attributes1 = "UID 7 RFC822.SIZE \(size1) FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\""
        let attributes2 = "UID 8 RFC822.SIZE \(size2) FLAGS (\\Recent) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\""
        let lines: [Line] = Self.opening() + [
            .client("a2 LIST \"\" \"*\""),
            .server("* LIST (\\HasNoChildren) \".\" INBOX"),
            .server("* LIST (\\HasChildren) \".\" Archive"),
            .server("* LIST (\\HasNoChildren) \".\" Archive.2024"),
            .server("* LIST (\\Noselect \\HasChildren) \".\" Shared"),
            .server("* LIST (\\HasNoChildren) \".\" \"&AMk-t&AOk-\""),
            .server("a2 OK List completed (0.001 + 0.000 secs)."),
        ] + Self.opened("a3", exists: 2) + [
            .client("a4 UID FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE)"),
            .server("* 1 FETCH (\(attributes1))"),
            .server("* 2 FETCH (\(attributes2))"),
            .server("a4 OK Fetch completed (0.001 + 0.000 secs)."),
            .client("a5 UID FETCH 8:* (UID RFC822.SIZE FLAGS INTERNALDATE)"),
            .server("* 2 FETCH (\(attributes2))"),
            .server("a5 OK Fetch completed (0.001 + 0.000 secs)."),
            .client("a6 UID FETCH 9:* (UID RFC822.SIZE FLAGS INTERNALDATE)"),
            .server("* 2 FETCH (\(attributes2))"),
            .server("a6 OK Fetch completed (0.001 + 0.000 secs)."),
        ] + Self.logout("a7")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            #expect(try await source.mailboxes() == ["INBOX", "Archive", "Archive/2024", "Été"])
            let info = try await source.select(mailbox: "INBOX")
            #expect(info.uidValidity == 1_700_000_000)
            #expect(info.expectedMessages == 2)

            var pages: [[ListedMessage]] = []
            try await source.list(mailbox: "INBOX", pageSize: 1, after: nil) { pages.append($0) }
            #expect(pages.map { $0.map(\.ident) } == [["7"], ["8"]])
            let all = pages.flatMap { $0 }
            #expect(all.map(\.locator) == [.uid(7), .uid(8)])
            #expect(all.map(\.size) == [size1, size2])
            #expect(all[0].flags.seen && all[0].flags.keywords == ["$Forwarded"])
            #expect(all[1].flags == MessageFlags())
            #expect(all[0].internalDate == Self.firstDate)
            #expect(all[1].internalDate == Date(timeIntervalSince1970: 1_704_103_200))

            var above7: [ListedMessage] = []
            try await source.list(mailbox: "INBOX", pageSize: 100, after: 7) { above7 += $0 }
            #expect(above7.map(\.ident) == ["8"])
            var above8: [[ListedMessage]] = []
            try await source.list(mailbox: "INBOX", pageSize: 100, after: 8) { above8.append($0) }
            #expect(above8.isEmpty)
            #expect(try await source.close().isEmpty)
        }
    }

    /// A folder in the URL that the server does not have is refused, naming the ones it has.
    @Test func aFolderTheServerDoesNotHaveIsRefused() async throws {
        let lines: [Line] = Self.opening() + [
            .client("a2 LIST \"\" \"*\""),
            .server("* LIST (\\HasNoChildren) \"/\" INBOX"),
            .server("* LIST (\\HasNoChildren) \"/\" Sent"),
            .server("a2 OK List completed."),
        ] + Self.logout("a3")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint, folder: "Archive")
            await #expect(throws: FunnelError.self) { try await source.mailboxes() }
            _ = try await source.close()
        }
    }

    /// One `UID FETCH 7:8 (UID BODY.PEEK[])` for the batch, after EXAMINE; each body arrives
    /// whole in its own spool, byte for byte (its size and SHA-256 those of the literal), with
    /// the flags and date it was listed with.
    @Test func fetchesABatchIntoSpools() async throws {
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 2) + [
            .client("a3 UID FETCH 7:8 (UID BODY.PEEK[])"),
        ] + Self.fetched(1, uid: 7, Self.first) + Self.fetched(2, uid: 8, Self.second) + [
            .server("a3 OK Fetch completed (0.001 + 0.000 secs)."),
        ] + Self.logout("a4")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(results.map(\.listed.ident) == ["7", "8"])
            let spools = DriverTranscript.spooled(results).compactMap { $0 }
            try #require(spools.count == 2)
            #expect(try spools.map(DriverTranscript.text) == [Self.first, Self.second])
            #expect(spools.map(\.size) == [Self.first.utf8.count, Self.second.utf8.count])
            #expect(spools.map(\.sha256) == [DriverTranscript.sha256(Self.first), DriverTranscript.sha256(Self.second)])
            #expect(spools[0].flags.seen && spools[0].internalDate == Self.firstDate)
            #expect(spools[0].headers.value(of: "Subject") == "one")
            _ = try await source.close()
        }
    }

    /// A `NO` to a UID FETCH means some of the data could not be fetched (RFC 3501 §6.4.5): the
    /// message that came is spooled, the one that did not fails alone, to be tried again on the
    /// next run, with the server's words; the session goes on.
    @Test func aFetchRefusedInPartFailsOnlyTheMissingMessage() async throws {
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 2) + [
            .client("a3 UID FETCH 7:8 (UID BODY.PEEK[])"),
        ] + Self.fetched(1, uid: 7, Self.first) + [
            .server("a3 NO Some messages could not be FETCHed (Failure)"),
        ] + Self.logout("a4")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(results).map { try $0.map(DriverTranscript.text) } == [Self.first, nil])
            let failure = try #require(DriverTranscript.failures(results)[1])
            #expect(failure.errorClass == .temporary)
            #expect(failure.message.contains("Some messages could not be FETCHed (Failure)"))
            _ = try await source.close()
        }
    }

    /// The same refusal when the batch is read from a window (one UID FETCH for this batch and
    /// the next, read a batch per call, as the engine asks when it plans several batches ahead):
    /// the first batch has its message, the second fails with the server's words.
    @Test func aFetchRefusedInPartFailsOnlyTheMissingMessageOfAWindow() async throws {
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 2) + [
            .client("a3 UID FETCH 7:8 (UID BODY.PEEK[])"),
        ] + Self.fetched(1, uid: 7, Self.first) + [
            .server("a3 NO Some messages could not be FETCHed (Failure)"),
        ] + Self.logout("a4")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let batches = Self.listed.map { [$0] }
            let one = try await source.fetch(batches[0], mailbox: "INBOX", upcoming: { nil }, horizon: { [batches[1]] },
                                             makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(one).map { try $0.map(DriverTranscript.text) } == [Self.first])
            let two = try await source.fetch(batches[1], mailbox: "INBOX", upcoming: { nil }, horizon: { [] },
                                             makeSpool: DriverTranscript.makeSpool)
            let failure = try #require(DriverTranscript.failures(two)[0])
            #expect(failure.errorClass == .temporary)
            #expect(failure.message.contains("Some messages could not be FETCHed (Failure)"))
            _ = try await source.close()
        }
    }

    /// The next batch's UID FETCH is written the moment this one's OK arrives (`upcoming`), and
    /// read by the call for it; a NO to it fails that batch's message alone, and nothing is
    /// sent ahead after a NO: the batch after it asks for itself.
    @Test func aBatchAskedForAheadIsReadByItsCallAndNothingFollowsANO() async throws {
        let ninth = ListedMessage(ident: "9", size: Self.first.utf8.count, locator: .uid(9))
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 3) + [
            .client("a3 UID FETCH 7 (UID BODY.PEEK[])"),
        ] + Self.fetched(1, uid: 7, Self.first) + [
            .server("a3 OK Fetch completed."),
            .client("a4 UID FETCH 8 (UID BODY.PEEK[])"),
            .server("a4 NO Some messages could not be FETCHed (Failure)"),
            .client("a5 UID FETCH 9 (UID BODY.PEEK[])"),
        ] + Self.fetched(3, uid: 9, Self.first) + [
            .server("a5 OK Fetch completed."),
        ] + Self.logout("a6")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint)
            let batches = [[Self.listed[0]], [Self.listed[1]], [ninth]]
            let one = try await source.fetch(batches[0], mailbox: "INBOX", upcoming: { batches[1] }, makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(one).map { try $0.map(DriverTranscript.text) } == [Self.first])
            #expect(source.sentAhead?.set == UIDSet(uids: [8]))
            let two = try await source.fetch(batches[1], mailbox: "INBOX", upcoming: { batches[2] }, makeSpool: DriverTranscript.makeSpool)
            #expect(DriverTranscript.failures(two)[0]?.message.contains("Some messages could not be FETCHed") == true)
            #expect(source.sentAhead == nil)
            let three = try await source.fetch(batches[2], mailbox: "INBOX", upcoming: { nil }, makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(three).map { try $0.map(DriverTranscript.text) } == [Self.first])
            _ = try await source.close()
        }
    }

    /// A server that hangs up in the middle of a literal, after a message came whole: that one
    /// is handed on (a link that drops every few megabytes still moves), the one cut short fails
    /// as temporary with an error that names the server, well before the read timeout, and the
    /// dead connection is dropped without a LOGOUT.
    @Test func aConnectionClosedMidLiteralHandsOnWhatCameWhole() async throws {
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 2) + [
            .client("a3 UID FETCH 7:8 (UID BODY.PEEK[])"),
        ] + Self.fetched(1, uid: 7, Self.first) + [
            .server("* 2 FETCH (UID 8 BODY[] {\(Self.second.utf8.count)}"),
            .serverBytes(String(Self.second.prefix(20))),
            .serverCloses,
        ]
        try await DriverTranscript.play(lines) { endpoint, server in
            let source = try Self.source(endpoint)
            let started = ContinuousClock.now
            let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
            #expect(try DriverTranscript.spooled(results).map { try $0.map(DriverTranscript.text) } == [Self.first, nil])
            let failure = try #require(DriverTranscript.failures(results)[1])
            #expect(failure.errorClass == .temporary)
            #expect(failure.message.contains("\(server): the server closed the connection"), "\(failure.message)")
            // The hang-up itself ended the wait, not the 5 s read timeout.
            #expect(ContinuousClock.now - started < .seconds(4))
            _ = try await source.close()
        }
    }

    /// A hang-up before any message came whole fails the fetch: the error names the server.
    @Test func aConnectionClosedBeforeAnyMessageFailsTheFetch() async throws {
        let lines: [Line] = Self.opening() + Self.opened("a2", exists: 2) + [
            .client("a3 UID FETCH 7:8 (UID BODY.PEEK[])"),
            .server("* 1 FETCH (UID 7 BODY[] {\(Self.first.utf8.count)}"),
            .serverBytes(String(Self.first.prefix(20))),
            .serverCloses,
        ]
        try await DriverTranscript.play(lines) { endpoint, server in
            let source = try Self.source(endpoint)
            do {
                let results = try await source.fetch(Self.listed, mailbox: "INBOX", makeSpool: DriverTranscript.makeSpool)
                Issue.record("a fetch cut off in its first literal gave results: \(results.map(\.listed.ident))")
            } catch {
                #expect(error as? TransportError == .closedByPeer(endpoint: server), "\(error)")
                #expect("\(error)" == "\(server): the server closed the connection")
            }
            _ = try await source.close()
        }
    }

    /// How a disposal is said on the wire, after SELECT (never EXAMINE: the source is read-write).
    struct Disposing: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var capabilities: String
        var how: Disposal
        var lines: [Line]
        /// The idents `dispose` says it disposed of.
        var disposed: [String]
    }

    static let disposals: [Disposing] = [
        Disposing(testDescription: "delete with UIDPLUS: UID STORE then UID EXPUNGE of exactly those UIDs",
                  capabilities: "IMAP4rev1 SASL-IR LITERAL+ UIDPLUS", how: .delete, lines: [
            .client("a3 UID STORE 7:8 +FLAGS.SILENT (\\Deleted)"),
            .server("a3 OK Store completed (0.001 + 0.000 secs)."),
            .client("a4 UID EXPUNGE 7:8"),
            .server("* 2 EXPUNGE"),
            .server("* 2 EXPUNGE"),
            .server("a4 OK Expunge completed (0.001 + 0.000 secs)."),
        ] + logout("a5"), disposed: ["7", "8"]),
        Disposing(testDescription: "delete without UIDPLUS: EXPUNGE when only ours are marked \\Deleted",
                  capabilities: "IMAP4rev1 SASL-IR LITERAL+", how: .delete, lines: [
            .client("a3 UID STORE 7:8 +FLAGS.SILENT (\\Deleted)"),
            .server("a3 OK Store completed."),
            .client("a4 UID SEARCH DELETED"),
            .server("* SEARCH 7 8"),
            .server("a4 OK Search completed."),
            .client("a5 EXPUNGE"),
            .server("* 2 EXPUNGE"),
            .server("* 2 EXPUNGE"),
            .server("a5 OK Expunge completed."),
        ] + logout("a6"), disposed: ["7", "8"]),
        Disposing(testDescription: "delete without UIDPLUS: no EXPUNGE when another message is marked \\Deleted",
                  capabilities: "IMAP4rev1 SASL-IR LITERAL+", how: .delete, lines: [
            .client("a3 UID STORE 7:8 +FLAGS.SILENT (\\Deleted)"),
            .server("a3 OK Store completed."),
            .client("a4 UID SEARCH DELETED"),
            .server("* SEARCH 3 7 8"),
            .server("a4 OK Search completed."),
        ] + logout("a5"), disposed: []),
        Disposing(testDescription: "mark seen: UID STORE +FLAGS.SILENT (\\Seen)",
                  capabilities: "IMAP4rev1 SASL-IR LITERAL+ UIDPLUS", how: .markSeen, lines: [
            .client("a3 UID STORE 7:8 +FLAGS.SILENT (\\Seen)"),
            .server("a3 OK Store completed."),
        ] + logout("a4"), disposed: ["7", "8"]),
    ]

    @Test(arguments: disposals) func disposes(_ fixture: Disposing) async throws {
        let lines = Self.opening(fixture.capabilities) + Self.opened("a2", exists: 3, readOnly: false) + fixture.lines
        try await DriverTranscript.play(lines) { endpoint, _ in
            let source = try Self.source(endpoint, readOnly: false)
            #expect(try await source.dispose(Self.listed, mailbox: "INBOX", how: fixture.how) == fixture.disposed)
            #expect(try await source.close().isEmpty)
        }
    }
}
