import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import MailTransport
import Testing

extension Dovecot {
/// Relaying through the project's private Postfix into Dovecot, read back over IMAP.
@Suite struct SMTPIntegrationTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
        try servers.reset("source")
        try servers.reset("target")
    }

    func smtp(_ user: String) throws -> String { "smtp://\(user)@127.0.0.1:\(try servers.port("MF_SMTP_PORT"))" }

    func received() async throws -> [[UInt8]] {
        try servers.flushMailQueue()
        let c = try await servers.client("target")
        let stored = try await c.contents(of: "INBOX").map { withoutTraceHeaders($0.bytes) }
        await c.logout()
        return stored
    }

    @Test func mboxToSMTPArrivesByteForByteThenNothing() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sample = TestServers.packageRoot.appendingPathComponent("samples/sample.mbox").path
        let args = ["import", "mbox:\(sample)", try smtp("source"), "--envelope-to", "target@localhost", "--ledger", "\(dir)/l.sqlite",
                    "--json", "--ca-file", servers.caFile, "--target-password-file", try servers.passwordFile("source", in: dir)]
        let first = try mailfunnel(args)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(jsonSummary(first.stdout)["delivered"] as? Int == 41)
        _ = try await runTransfer(source: "mbox:\(sample)", target: "maildir:\(dir)/M", ledgerPath: "\(dir)/local.sqlite")
        let expected = try maildirMessages("\(dir)/M").map(crlf)
        #expect(digests(try await received()) == digests(expected))
        #expect(jsonSummary(try mailfunnel(args).stdout)["delivered"] as? Int == 0)
    }

    @Test func pop3AndIMAPToSMTPS() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = imapMessages(5, tag: "relay")
        let c = try await servers.client("source")
        try await c.seed("INBOX", messages)
        await c.logout()
        let smtps = "smtps://source@127.0.0.1:\(try servers.port("MF_SMTPS_PORT"))"
        let auth = ["--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir),
                    "--target-password-file", try servers.passwordFile("source", in: dir), "--envelope-to", "target@localhost", "--json"]
        let pop = try mailfunnel(["import", "pop3s://source@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))", smtps,
                                  "--ledger", "\(dir)/a.sqlite"] + auth)
        #expect(pop.status == 0, "stderr: \(pop.stderr)")
        let imap = try mailfunnel(["import", "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))", smtps,
                                   "--ledger", "\(dir)/b.sqlite"] + auth)
        #expect(imap.status == 0, "stderr: \(imap.stderr)")
        // Two runs on two ledgers: each message arrives twice, byte for byte.
        #expect(digests(try await received()) == digests(messages.map(\.bytes) + messages.map(\.bytes)))
    }

    /// A batch goes pipelined (Postfix has PIPELINING and CHUNKING). Two messages in it are
    /// refused: one after its data, one for its sender (at RCPT, so its BDAT is refused too). The
    /// refused ones are sent again alone after RSET (a server may keep a refused transaction open
    /// and refuse the next MAIL for it; Postfix does not): the two at fault fail, permanently, and
    /// every other message arrives once.
    @Test func refusalsInAPipelinedBatchAreEachMessagesOwn() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var messages: [[UInt8]] = []
        for i in 0..<7 {
            var text = ""
            if i == 3 { text += "Return-Path: <refused@mailfunnel.test>\n" }
            text += "From: a\(i)@example.org\nTo: target@localhost\nSubject: pipelined \(i)\nMessage-ID: <pipelined-\(i)@test>\n"
            if i == 1 { text += "X-MailFunnel-Test: refuse\n" }
            text += "\nbody \(i)\n" + String(repeating: "line \(i)\n", count: 50 * i)
            messages.append(Array(text.utf8))
        }
        var mbox: [UInt8] = []
        for m in messages { mbox += Array("From a@b Sat Jan  3 01:05:34 2004\n".utf8) + m + [0x0A] }
        FileManager.default.createFile(atPath: "\(dir)/in.mbox", contents: Data(mbox))
        let args = ["import", "mbox:\(dir)/in.mbox", try smtp("source"), "--envelope-to", "target@localhost", "--ledger", "\(dir)/l.sqlite",
                    "--json", "--ca-file", servers.caFile, "--target-password-file", try servers.passwordFile("source", in: dir)]
        let first = try mailfunnel(args)
        #expect(first.status == 65, "stderr: \(first.stderr)")
        #expect(jsonSummary(first.stdout)["delivered"] as? Int == 5)
        #expect(jsonSummary(first.stdout)["failed"] as? Int == 2)
        #expect(jsonSummary(first.stdout)["deferred"] as? Int == 0)
        #expect(first.stderr.contains("message refused by the MailFunnel test Postfix"), "stderr: \(first.stderr)")
        #expect(first.stderr.contains("sender refused by the MailFunnel test Postfix"), "stderr: \(first.stderr)")
        let expected = [0, 2, 4, 5, 6].map { crlf(messages[$0]) }
        #expect(digests(try await received()) == digests(expected))
        // Again: the two refused are tried again (permanent failures get a few tries); nothing else moves.
        let second = try mailfunnel(args)
        #expect(jsonSummary(second.stdout)["delivered"] as? Int == 0)
        #expect(jsonSummary(second.stdout)["failed"] as? Int == 2)
        #expect(digests(try await received()) == digests(expected))
    }

    @Test func usageAndLoginErrors() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sample = TestServers.packageRoot.appendingPathComponent("samples/sample.mbox").path
        let noRecipient = try mailfunnel(["import", "mbox:\(sample)", try smtp("source"), "--ledger", "\(dir)/l.sqlite"],
                                         environment: ["MAILFUNNEL_TARGET_PASSWORD": "x"])
        #expect(noRecipient.status == 64)
        #expect(noRecipient.stderr.contains("--envelope-to"))
        try "wrong\n".write(toFile: "\(dir)/bad.pass", atomically: true, encoding: .utf8)
        let wrong = try mailfunnel(["import", "mbox:\(sample)", try smtp("source"), "--envelope-to", "target@localhost",
                                    "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile, "--target-password-file", "\(dir)/bad.pass"])
        #expect(wrong.status == 77, "stderr: \(wrong.stderr)")
        #expect(!wrong.stderr.contains("wrong\n"))
    }
}
}
