import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import Logging
import MailTransport
import Testing

extension Dovecot {
@Suite struct POP3IntegrationTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
        try servers.reset("source")
        try servers.reset("target")
    }

    func pop3s(_ user: String) throws -> String { "pop3s://\(user)@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))" }
    func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }

    func seed(_ messages: [StoredMessage]) async throws {
        let c = try await servers.client("source")
        try await c.seed("INBOX", messages)
        await c.logout()
    }

    @Test func pop3ToIMAPByteForByteThenNothing() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = imapMessages(7, tag: "pop")
        try await seed(messages)
        let args = ["import", try pop3s("source"), try imaps("target") + "/INBOX", "--ledger", "\(dir)/l.sqlite", "--json",
                    "--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir),
                    "--target-password-file", try servers.passwordFile("target", in: dir)]
        let first = try mailfunnel(args)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(jsonSummary(first.stdout)["delivered"] as? Int == 7)
        let dst = try await servers.client("target")
        #expect(digests(try await dst.contents(of: "INBOX").map(\.bytes)) == digests(messages.map(\.bytes)))
        await dst.logout()
        #expect(jsonSummary(try mailfunnel(args).stdout)["delivered"] as? Int == 0)
    }

    @Test func deleteHappensAtQuitAfterCommit() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await seed(imapMessages(4, tag: "popdel"))
        let r = try mailfunnel(["import", "pop3://source@127.0.0.1:\(try servers.port("MF_POP3_PORT"))", "maildir:\(dir)/M",
                                "--ledger", "\(dir)/l.sqlite", "--json", "--after-delivery", "delete", "--ca-file", servers.caFile,
                                "--source-password-file", try servers.passwordFile("source", in: dir)])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(jsonSummary(r.stdout)["delivered"] as? Int == 4)
        #expect(jsonSummary(r.stdout)["disposed"] as? Int == 4)
        let c = try await servers.client("source")
        #expect(try await c.contents(of: "INBOX").isEmpty)
        await c.logout()
        #expect(try maildirMessages("\(dir)/M").count == 4)
        let status = try SQLiteLedger(path: "\(dir)/l.sqlite").status()
        #expect(status.first?.counts["disposed"] == 4)
    }

    @Test func loginFailuresAndTLS() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "wrong\n".write(toFile: "\(dir)/bad.pass", atomically: true, encoding: .utf8)
        let wrong = try mailfunnel(["import", try pop3s("source"), "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite",
                                    "--ca-file", servers.caFile, "--source-password-file", "\(dir)/bad.pass"])
        #expect(wrong.status == 77, "stderr: \(wrong.stderr)")
        #expect(wrong.stderr.contains("login as source refused"))
        let nostls = try mailfunnel(["import", "pop3://source@127.0.0.1:\(try servers.port("MF_NOSSL_POP3_PORT"))", "maildir:\(dir)/M",
                                     "--ledger", "\(dir)/l.sqlite", "--source-password-file", try servers.passwordFile("source", in: dir)])
        #expect(nostls.status == 69, "stderr: \(nostls.stderr)")
        #expect(nostls.stderr.contains("does not offer STLS"))
    }

    /// The DELEs of messages an earlier run delivered are carried out by a QUIT before the session
    /// downloads anything (a checkpoint), so a session cut later still leaves the maildrop smaller;
    /// the new session's numbers, which the QUIT changed, still reach the right messages.
    @Test func leftoverDeletionsAreCarriedOutBeforeDownloading() async throws {
        let messages = imapMessages(3, tag: "popcheck")
        try await seed(messages)
        func remaining() async throws -> [String] {
            let c = try await servers.client("source")
            let held = digests(try await c.contents(of: "INBOX").map(\.bytes))
            await c.logout()
            return held
        }
        let logger = Logger(label: "test")
        let source = try #require(try Endpoints.source(try MailURL.parse(try pop3s("source")), settings: servers.settings(for: "source"),
                                                       logger: logger) as? POP3Source)
        _ = try await source.select(mailbox: "INBOX")
        var listed: [ListedMessage] = []
        try await source.list(mailbox: "INBOX", pageSize: 100, after: nil) { listed += $0 }
        try #require(listed.count == 3)
        // The first was delivered by a run that never reached its QUIT: a leftover.
        _ = try await source.dispose([listed[0]], mailbox: "INBOX", how: .delete)
        let results = try await source.fetch(Array(listed[1...]), mailbox: "INBOX") {
            Spool(options: Spool.Options(directory: NSTemporaryDirectory()))
        }
        // Seen from another session while this one is still open.
        #expect(try await remaining() == digests(messages[1...].map(\.bytes)))
        let fetched = try results.map { r -> [UInt8] in
            guard case let .spooled(_, s) = r else { throw SetupError("not fetched: \(r)") }
            return try s.collect()
        }
        #expect(digests(fetched) == digests(messages[1...].map(\.bytes)))
        _ = try await source.dispose(Array(listed[1...]), mailbox: "INBOX", how: .delete)
        let disposed = try await source.close()
        #expect(Set(disposed["INBOX"] ?? []) == Set(listed.map(\.ident)))
        #expect(try await remaining().isEmpty)
    }

    /// Crash after every side effect of a POP3 → IMAP run with delete, including between the DELEs
    /// and the QUIT that carries them out; resume; every message arrives once and none is lost.
    @Test func pop3ToIMAPWithDeleteLosesNothingAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var source = EndpointSettings(passwordVariable: "UNUSED")
        source.secret = Config.Secret(inline: servers.password("source"))
        source.caFile = servers.caFile
        var target = source
        target.secret = Config.Secret(inline: servers.password("target"))
        try await servers.assertMoveSurvivesEveryCrash(imapMessages(5, tag: "popcrash"), minimumEffects: 12, keepsFlags: false,
                                                       workDir: dir, run: inProcess { ledger, hook in
            _ = try await runTransfer(source: try pop3s("source"), target: try imaps("target"), ledgerPath: ledger, disposal: .delete,
                                      limits: .init(maxMessages: 2), sourceSettings: source, targetSettings: target, afterEffect: hook)
        })
    }
}
}
