import Foundation
import Logging
import MailTransport
import Testing

/// The login against the real Dovecot and Postfix: the `hashed` user's password is stored only as
/// a hash, so the SCRAM-SHA-256 and CRAM-MD5 that Dovecot offers fail for it and PLAIN works (GNU
/// Mailutils' case, issue 19); and the ways the user chooses are the ways used.
extension Dovecot {
@Suite struct LoginFallbackTests {
    let servers: TestServers
    let logger = Logger(label: "test")

    init() throws {
        servers = try TestServers.load()
    }

    var hashed: Credentials { Credentials(user: "hashed", password: servers.password("hashed")) }

    func endpoint(_ key: String, loginMethods: [LoginMethod]? = nil) throws -> ServerEndpoint {
        ServerEndpoint(host: "127.0.0.1", port: try servers.port(key), tls: .implicit, caFile: servers.caFile, loginMethods: loginMethods)
    }

    /// How many logins Dovecot's log records for `user` with `method` (`imap-login: Login:
    /// user=<hashed>, method=PLAIN, …`).
    func logins(_ user: String, method: String) throws -> Int {
        let log = try String(contentsOfFile: servers.values["MF_DOVECOT_LOG"] ?? "", encoding: .utf8)
        return log.components(separatedBy: "user=<\(user)>, method=\(method),").count - 1
    }

    /// Whether the log comes to record `count` such logins within a few seconds (Dovecot's log
    /// process writes a moment after the login).
    func logRecords(_ count: Int, logins user: String, method: String) async throws -> Bool {
        for _ in 0..<50 {
            if try logins(user, method: method) >= count { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func scramRefusedThenPlainLetsTheUserIn() async throws {
        let before = try logins("hashed", method: "PLAIN")
        let imap = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT"), credentials: hashed, logger: logger)
        await imap.logout()
        let pop = try await POP3Client.open(try endpoint("MF_POP3S_PORT"), credentials: hashed, logger: logger)
        try await pop.quit()
        // Postfix's submission asks the same Dovecot, which offers it the same mechanisms.
        let smtp = try await SMTPClient.open(try endpoint("MF_SMTPS_PORT"), credentials: hashed, heloName: "localhost", logger: logger)
        await smtp.quit()
        #expect(try await logRecords(before + 2, logins: "hashed", method: "PLAIN"))
    }

    @Test func everyRefusalIsNamed() async throws {
        let wrong = Credentials(user: "source", password: "wrong")
        let failure = await #expect(throws: LoginFailure.self) {
            _ = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT"), credentials: wrong, logger: logger)
        }
        #expect(failure?.attempts.map(\.method) == ["SCRAM-SHA-256", "PLAIN", "CRAM-MD5"])
        #expect(failure?.notTried == ["LOGIN", "LOGIN command"])
        #expect(failure?.ending == .refused)
    }

    /// `auth_mechanisms = ["PLAIN"]`: PLAIN, though the user could SCRAM.
    @Test func theChosenMechanismIsTheOneUsed() async throws {
        let before = try logins("source", method: "PLAIN")
        let c = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT", loginMethods: [.sasl(.plain)]),
                                          credentials: Credentials(user: "source", password: servers.password("source")), logger: logger)
        await c.logout()
        #expect(try await logRecords(before + 1, logins: "source", method: "PLAIN"))
    }

    /// The command line's option reaches the login, and a refusal of every chosen way exits 77
    /// naming each; without the option the same import gets in.
    @Test func theImportOptionChoosesTheWaysIn() throws {
        let dir = NSTemporaryDirectory() + "/mf-login-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = "imaps://hashed@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
        let common = [source, "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile,
                      "--source-password-file", try servers.passwordFile("hashed", in: dir)]
        let refused = try mailfunnel(["import"] + common + ["--source-auth-mechanisms", "CRAM-MD5,SCRAM-SHA-256"])
        #expect(refused.status == 77, "stderr: \(refused.stderr)")
        #expect(refused.stderr.contains("login as hashed refused (tried CRAM-MD5: NO"), "stderr: \(refused.stderr)")
        #expect(refused.stderr.contains("; SCRAM-SHA-256: NO"), "stderr: \(refused.stderr)")
        let ok = try mailfunnel(["import"] + common)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
    }
}
}
