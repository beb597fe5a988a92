import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import MailMessage
import MailTransport
import NIOCore
import Testing

/// `IMAPSink` against a scripted server, each conversation as Dovecot would hold it (RFC 3501
/// §6.3.11 APPEND, RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID, RFC 7888 LITERAL+): the target
/// folder looked up and selected for its UIDVALIDITY and UIDNEXT, one APPEND with flags and date
/// over a synchronizing literal, and a MULTIAPPEND, accepted whole or refused and then retried
/// message by message.
@Suite(.timeLimit(.minutes(1))) struct IMAPSinkTests {
    typealias Line = TranscriptServer.Line

    static let first = "From: anne@example.org\r\nSubject: one\r\n\r\nHello Jean.\r\n"
    static let second = "From: bob@example.org\r\nSubject: two\r\n\r\nÉté.\r\n"
    static let date = Date(timeIntervalSince1970: 837_596_665)
    static let keys = ["1", "2"].map { SourceKey(account: "pop3://jean@pop.example.org", mailbox: "INBOX", ident: $0) }

    static func opening(_ capabilities: String) -> [Line] {
        [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS AUTH=PLAIN] Dovecot ready."),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 OK [CAPABILITY \(capabilities)] Logged in"),
            .client("a2 LIST \"\" \"*\""),
            .server("* LIST (\\HasNoChildren) \"/\" INBOX"),
            .server("a2 OK List completed (0.001 + 0.000 secs)."),
            .client("a3 SELECT INBOX"),
            .server("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
            .server("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted."),
            .server("* 41 EXISTS"),
            .server("* 0 RECENT"),
            .server("* OK [UIDVALIDITY 1700000000] UIDs valid"),
            .server("* OK [UIDNEXT 42] Predicted next UID"),
            .server("a3 OK [READ-WRITE] Select completed (0.001 + 0.000 secs)."),
        ]
    }

    static func logout(_ tag: String) -> [Line] {
        [.client("\(tag) LOGOUT"), .server("* BYE Logging out"), .server("\(tag) OK Logout completed.")]
    }

    /// The message's lines as the client sends them inside its literal.
    static func literal(_ message: String) -> [Line] {
        var lines = message.components(separatedBy: "\r\n")
        lines.removeLast()
        return lines.map { .client($0) }
    }

    static func sink(_ endpoint: ServerEndpoint) throws -> IMAPSink {
        IMAPSink(url: try MailURL.parse("imap://jean@127.0.0.1:\(endpoint.port)"), endpoint: endpoint, login: DriverTranscript.jean,
                 logger: DriverTranscript.logger)
    }

    static func spooled(_ message: String, flags: MessageFlags = MessageFlags(), date: Date? = nil) throws -> SpooledMessage {
        let spool = DriverTranscript.makeSpool()
        try spool.append(ByteBuffer(string: message))
        return spool.finish(flags: flags, internalDate: date)
    }

    /// Without MULTIAPPEND or LITERAL+: `prepare` selects the folder and gives its UIDVALIDITY
    /// and UIDNEXT; `deliver` APPENDs at once, with the message's flags and INTERNALDATE, sends
    /// the bytes only after the server's `+`, and the APPENDUID is the reference.
    @Test func appendsOneMessageOverASynchronizingLiteral() async throws {
        let lines = Self.opening("IMAP4rev1 SASL-IR UIDPLUS") + [
            .client("a4 APPEND INBOX (\\Seen \\Flagged) \"17-Jul-1996 09:44:25 +0000\" {\(Self.first.utf8.count)}"),
            .server("+ OK"),
        ] + Self.literal(Self.first) + [
            .client(""),
            .server("a4 OK [APPENDUID 1700000000 42] Append completed (0.001 + 0.000 secs)."),
        ] + Self.logout("a5")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            #expect(try await sink.prepare(mailbox: "INBOX") == TargetWatermark(uidValidity: 1_700_000_000, uidNext: 42))
            let flags = MessageFlags(seen: true, flagged: true)
            #expect(try await sink.deliver(try Self.spooled(Self.first, flags: flags, date: Self.date), key: Self.keys[0], mailbox: "INBOX")
                    == .delivered("1700000000:42"))
            try await sink.close()
        }
    }

    /// With MULTIAPPEND and LITERAL+, the batch is staged and goes at `flush` as one APPEND of
    /// two non-synchronizing literals; the APPENDUID set gives each message its reference.
    @Test func aBatchGoesAsOneMultiappend() async throws {
        let lines = Self.opening("IMAP4rev1 SASL-IR LITERAL+ UIDPLUS MULTIAPPEND") + [
            .client("a4 APPEND INBOX {\(Self.first.utf8.count)+}"),
        ] + Self.literal(Self.first) + [
            .client(" {\(Self.second.utf8.count)+}"),
        ] + Self.literal(Self.second) + [
            .client(""),
            .server("a4 OK [APPENDUID 1700000000 42:43] Append completed (0.001 + 0.000 secs)."),
        ] + Self.logout("a5")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            _ = try await sink.prepare(mailbox: "INBOX")
            #expect(try await sink.deliver(try Self.spooled(Self.first), key: Self.keys[0], mailbox: "INBOX") == .staged)
            #expect(try await sink.deliver(try Self.spooled(Self.second), key: Self.keys[1], mailbox: "INBOX") == .staged)
            #expect(try await sink.flush() == [Self.keys[0]: .delivered("1700000000:42"), Self.keys[1]: .delivered("1700000000:43")])
            try await sink.close()
        }
    }

    /// A MULTIAPPEND is all or nothing (RFC 3502): refused [TOOBIG], nothing was appended, and
    /// the batch is halved (here, to each message alone), so only the one at fault is refused; it
    /// is over the limit (skipped, in words), and so is anything as large from then on.
    @Test func aMultiappendRefusedTooBigIsHalvedUntilTheOneAtFaultIsAlone() async throws {
        let tooBig = "a%@ NO [TOOBIG] Mail size is larger than the maximum size allowed"
        let lines = Self.opening("IMAP4rev1 SASL-IR LITERAL+ UIDPLUS MULTIAPPEND") + [
            .client("a4 APPEND INBOX {\(Self.first.utf8.count)+}"),
        ] + Self.literal(Self.first) + [
            .client(" {\(Self.second.utf8.count)+}"),
        ] + Self.literal(Self.second) + [
            .client(""),
            .server(tooBig.replacingOccurrences(of: "%@", with: "4")),
            .client("a5 APPEND INBOX {\(Self.first.utf8.count)+}"),
        ] + Self.literal(Self.first) + [
            .client(""),
            .server("a5 OK [APPENDUID 1700000000 42] Append completed."),
            .client("a6 APPEND INBOX {\(Self.second.utf8.count)+}"),
        ] + Self.literal(Self.second) + [
            .client(""),
            .server(tooBig.replacingOccurrences(of: "%@", with: "6")),
        ] + Self.logout("a7")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            _ = try await sink.prepare(mailbox: "INBOX")
            _ = try await sink.deliver(try Self.spooled(Self.first), key: Self.keys[0], mailbox: "INBOX")
            _ = try await sink.deliver(try Self.spooled(Self.second), key: Self.keys[1], mailbox: "INBOX")
            let outcomes = try await sink.flush()
            #expect(outcomes.count == 2)
            #expect(outcomes[Self.keys[0]] == .delivered("1700000000:42"))
            guard case let .failed(error)? = outcomes[Self.keys[1]] else {
                Issue.record("the message too big: \(String(describing: outcomes[Self.keys[1]]))")
                return
            }
            #expect(error.errorClass == .overLimit)
            #expect(error.message.contains("APPEND (mailbox INBOX) failed: NO [TOOBIG] Mail size is larger"), "\(error.message)")
            #expect(sink.maxMessageSize == Self.second.utf8.count - 1)
            try await sink.close()
        }
    }

    static func pending(size: Int, sha256: String, messageID: String?, watermark: TargetWatermark) -> PendingRecord {
        PendingIntent(key: keys[0], sha256: sha256, size: size, messageID: messageID, target: "imap://jean@127.0.0.1",
                      targetMailbox: "INBOX", watermark: watermark)
    }

    /// Recovery: a candidate the server answers `BODY[] NIL` for holds no content it will show;
    /// it is not an empty message, so it is not taken for the copy of a zero-byte one.
    @Test func aCandidateWithoutContentIsNotTheCopy() async throws {
        let lines = Self.opening("IMAP4rev1 SASL-IR UIDPLUS") + [
            .client("a4 UID FETCH 41:* (UID RFC822.SIZE)"),
            .server("* 41 FETCH (UID 41 RFC822.SIZE 0)"),
            .server("a4 OK Fetch completed."),
            .client("a5 UID FETCH 41 (UID BODY.PEEK[])"),
            .server("* 41 FETCH (UID 41 BODY[] NIL)"),
            .server("a5 OK Fetch completed."),
        ] + Self.logout("a6")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            let record = Self.pending(size: 0, sha256: DriverTranscript.sha256(""), messageID: nil,
                                      watermark: TargetWatermark(uidValidity: 1_700_000_000, uidNext: 41))
            #expect(try await sink.locate(record, taken: [], unknownCopies: 0) == .absent)
            try await sink.close()
        }
    }

    /// Recovery in a renumbered folder searches by Message-ID, as an IMAP quoted string; an id
    /// with a CR or an 8-bit byte cannot be one, so nothing is searched and the message goes again.
    @Test func aMessageIDAQuotedStringCannotCarryIsNotSearched() async throws {
        let lines = Self.opening("IMAP4rev1 SASL-IR UIDPLUS") + Self.logout("a4")
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            let record = Self.pending(size: 10, sha256: DriverTranscript.sha256("0123456789"), messageID: "<a\r\nb@été.example>",
                                      watermark: TargetWatermark(uidValidity: 1_600_000_000, uidNext: 7))
            #expect(try await sink.locate(record, taken: [], unknownCopies: 0) == .absent)
            try await sink.close()
        }
        #expect(IMAPSink.quotedSearchString("<a\"b@x>") == "\"<a\\\"b@x>\"")
        #expect(IMAPSink.quotedSearchString("<b@\u{7F}x>") == nil)
    }
}
