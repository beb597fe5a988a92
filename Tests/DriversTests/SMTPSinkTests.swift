import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import MailTransport
import NIOCore
import Testing

/// `SMTPSink` against a scripted server, each conversation as Postfix would hold it (RFC 5321,
/// RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 1870 SIZE, RFC 6152 8BITMIME): a batch sent as one
/// pipelined stream of MAIL, RCPT and BDAT LAST per message; a refusal in it sent again alone
/// after RSET, whose own reply decides; and, without CHUNKING, DATA with dot-stuffing.
@Suite(.timeLimit(.minutes(1))) struct SMTPSinkTests {
    typealias Line = TranscriptServer.Line

    static let recipient = "jean@example.org"
    /// Its Return-Path is the envelope sender.
    static let first = "Return-Path: <anne@example.org>\r\nFrom: anne@example.org\r\nTo: jean@example.org\r\nSubject: one\r\n\r\nHello Jean.\r\n"
    /// 8-bit, so MAIL says BODY=8BITMIME; no Return-Path, so the sender is the recipient itself.
    static let second = "From: bob@example.org\r\nTo: jean@example.org\r\nSubject: two\r\n\r\nÉté.\r\n"

    static let pipeliningAndChunking = ["PIPELINING", "SIZE 10240000", "ETRN", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME",
                                        "DSN", "SMTPUTF8", "CHUNKING"]

    /// The greeting, EHLO with `extensions`, AUTH PLAIN.
    static func opening(_ extensions: [String] = pipeliningAndChunking) -> [Line] {
        [.server("220 mx.example.org ESMTP Postfix"), .client("EHLO \(DriverTranscript.heloName)"), .server("250-mx.example.org")]
            + extensions.dropLast().map { .server("250-\($0)") } + [.server("250 \(extensions.last!)")] + [
                .client("AUTH PLAIN AGplYW4AczNjcmV0"),
                .server("235 2.7.0 Authentication successful"),
            ]
    }

    static let quit: [Line] = [.client("QUIT"), .server("221 2.0.0 Bye")]

    /// The message's lines as the client sends them after `BDAT n LAST` (as they are).
    static func chunk(_ message: String) -> [Line] {
        var lines = message.components(separatedBy: "\r\n")
        lines.removeLast()
        return lines.map { .client($0) }
    }

    /// MAIL, RCPT and BDAT LAST for one message, each answered as it is read.
    static func transaction(_ message: String, from sender: String, eightBit: Bool = false, rcpt: String = "250 2.1.5 Ok",
                            bdat: String) -> [Line] {
        let size = message.utf8.count
        return [
            .client("MAIL FROM:<\(sender)> SIZE=\(size)\(eightBit ? " BODY=8BITMIME" : "")"),
            .server("250 2.1.0 Ok"),
            .client("RCPT TO:<\(recipient)>"),
            .server(rcpt),
            .client("BDAT \(size) LAST"),
        ] + chunk(message) + [.server(bdat)]
    }

    static func sink(_ endpoint: ServerEndpoint) throws -> SMTPSink {
        SMTPSink(url: try MailURL.parse("smtp://jean@127.0.0.1:\(endpoint.port)"), endpoint: endpoint, login: DriverTranscript.jean,
                 envelopeTo: recipient, logger: DriverTranscript.logger)
    }

    static func spooled(_ message: String) throws -> SpooledMessage {
        let spool = DriverTranscript.makeSpool()
        try spool.append(ByteBuffer(string: message))
        return spool.finish()
    }

    static let keys = ["7", "8"].map { SourceKey(account: "imap://jean@imap.example.org", mailbox: "INBOX", uidValidity: 1, ident: $0) }

    /// Both messages are staged at `deliver` and go at `flush` as one pipelined stream: the
    /// envelope sender from Return-Path (else the recipient), SIZE always and BODY=8BITMIME for
    /// the 8-bit one, each message's bytes after its `BDAT n LAST`; each is delivered with the
    /// server's final reply as its reference. SIZE from EHLO is the sink's size limit.
    @Test func aBatchGoesAsOnePipelinedStream() async throws {
        let lines = Self.opening()
            + Self.transaction(Self.first, from: "anne@example.org", bdat: "250 2.0.0 Ok: queued as 4XyZ1")
            + Self.transaction(Self.second, from: Self.recipient, eightBit: true, bdat: "250 2.0.0 Ok: queued as 4XyZ2")
            + Self.quit
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            #expect(try await sink.prepare(mailbox: "INBOX") == TargetWatermark())
            #expect(sink.maxMessageSize == 10_240_000)
            #expect(try await sink.deliver(try Self.spooled(Self.first), key: Self.keys[0], mailbox: "INBOX") == .staged)
            #expect(try await sink.deliver(try Self.spooled(Self.second), key: Self.keys[1], mailbox: "INBOX") == .staged)
            #expect(try await sink.flush() == [Self.keys[0]: .delivered("250 2.0.0 Ok: queued as 4XyZ1"),
                                               Self.keys[1]: .delivered("250 2.0.0 Ok: queued as 4XyZ2")])
            try await sink.close()
        }
    }

    /// A refusal at RCPT, for this message's sender (Postfix says sender restrictions at RCPT).
    struct Refusal: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var reply: String
        var errorClass: DeliveryError.Class
    }

    static let refusals = [
        Refusal(testDescription: "5xx: a permanent failure", reply: "553 5.7.1 <spam@example.net>: Sender address rejected: not owned by user jean",
                errorClass: .permanent),
        Refusal(testDescription: "4xx: a temporary failure", reply: "450 4.7.1 <spam@example.net>: Sender address rejected: try again later",
                errorClass: .temporary),
    ]

    /// The first message of the batch is refused at RCPT (its BDAT then finds no valid
    /// recipient), the second goes through. After the stream, RSET, and the refused message is
    /// sent again alone (MAIL and RCPT pipelined, no BDAT once RCPT is refused, RSET after): its
    /// own reply fails it, permanently for 5xx, for the next run for 4xx; the other is delivered.
    @Test(arguments: refusals) func aRefusalAtRCPTFailsThatMessageOnly(_ refusal: Refusal) async throws {
        let refused = "Return-Path: <spam@example.net>\r\nFrom: spam@example.net\r\nSubject: buy\r\n\r\nNow.\r\n"
        let lines = Self.opening()
            + Self.transaction(refused, from: "spam@example.net", rcpt: refusal.reply, bdat: "554 5.5.1 Error: no valid recipients")
            + Self.transaction(Self.second, from: Self.recipient, eightBit: true, bdat: "250 2.0.0 Ok: queued as 4XyZ2")
            + [
                .client("RSET"),
                .server("250 2.0.0 Ok"),
                .client("MAIL FROM:<spam@example.net> SIZE=\(refused.utf8.count)"),
                .server("250 2.1.0 Ok"),
                .client("RCPT TO:<\(Self.recipient)>"),
                .server(refusal.reply),
                .client("RSET"),
                .server("250 2.0.0 Ok"),
            ] + Self.quit
        try await DriverTranscript.play(lines) { endpoint, server in
            let sink = try Self.sink(endpoint)
            _ = try await sink.deliver(try Self.spooled(refused), key: Self.keys[0], mailbox: "INBOX")
            _ = try await sink.deliver(try Self.spooled(Self.second), key: Self.keys[1], mailbox: "INBOX")
            let outcomes = try await sink.flush()
            #expect(outcomes.count == 2)
            #expect(outcomes[Self.keys[1]] == .delivered("250 2.0.0 Ok: queued as 4XyZ2"))
            guard case let .failed(error)? = outcomes[Self.keys[0]] else {
                Issue.record("the refused message: \(String(describing: outcomes[Self.keys[0]]))")
                return
            }
            #expect(error.errorClass == refusal.errorClass)
            #expect(error.message == "\(server): RCPT refused: \(refusal.reply)")
            try await sink.close()
        }
    }

    /// Without CHUNKING each message goes at `deliver`, MAIL, RCPT and DATA pipelined, then after
    /// 354 the message dot-stuffed (a line that begins with "." gets another, RFC 5321 §4.5.2)
    /// and ended by "." alone; the final reply is its reference, and `flush` has nothing left.
    @Test func withoutChunkingDATAIsDotStuffed() async throws {
        let message = "From: anne@example.org\r\nSubject: dots\r\n\r\n.line\r\n.\r\n..\r\nend\r\n"
        let extensions = Self.pipeliningAndChunking.filter { $0 != "CHUNKING" }
        let lines = Self.opening(extensions) + [
            .client("MAIL FROM:<\(Self.recipient)> SIZE=\(message.utf8.count)"),
            .server("250 2.1.0 Ok"),
            .client("RCPT TO:<\(Self.recipient)>"),
            .server("250 2.1.5 Ok"),
            .client("DATA"),
            .server("354 End data with <CR><LF>.<CR><LF>"),
            .client("From: anne@example.org"),
            .client("Subject: dots"),
            .client(""),
            .client("..line"),
            .client(".."),
            .client("..."),
            .client("end"),
            .client("."),
            .server("250 2.0.0 Ok: queued as 4XyZ3"),
        ] + Self.quit
        try await DriverTranscript.play(lines) { endpoint, _ in
            let sink = try Self.sink(endpoint)
            #expect(try await sink.deliver(try Self.spooled(message), key: Self.keys[0], mailbox: "INBOX")
                    == .delivered("250 2.0.0 Ok: queued as 4XyZ3"))
            #expect(try await sink.flush().isEmpty)
            try await sink.close()
        }
    }
}
