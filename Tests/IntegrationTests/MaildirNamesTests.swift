import Foundation
import Testing

extension Dovecot {
    /// Maildir++ folder names as Dovecot spells them (modified UTF-7), against the real Dovecot:
    /// what MailFunnel writes Dovecot opens, and what Dovecot wrote MailFunnel reads.
    @Suite struct MaildirNamesTests {
        let servers: TestServers
        /// `Reçus/Été` on the IMAP wire and in a Maildir++ directory name.
        static let wire = "Re&AOc-us/&AMk-t&AOk-"

        init() throws {
            servers = try TestServers.load()
            try servers.reset("source")
            try servers.reset("target")
        }

        func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }
        var mailDir: String { servers.values["MF_MAIL_DIR"] ?? "" }

        func seedInternational(_ count: Int) async throws {
            let src = try await servers.client("source")
            try await src.seed(Self.wire, imapMessages(count, tag: "names"))
            await src.logout()
        }

        @Test func aMaildirTargetNamesFoldersAsDovecotOpensThem() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try await seedInternational(3)
            let r = try mailfunnel(["import", try imaps("source"), "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--json",
                                    "--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir)])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(jsonSummary(r.stdout)["delivered"] as? Int == 3)
            #expect(FileManager.default.fileExists(atPath: "\(dir)/M/.Re&AOc-us.&AMk-t&AOk-/cur"))

            // Dovecot reads that Maildir as its mail user would: it must open the folder by its name.
            let (chown, chownOut) = try TestServers.shell(["chown", "-R", "--reference=\(mailDir)", dir])
            #expect(chown == 0, "\(chownOut)")
            let (status, out) = try TestServers.shell(["doveadm", "-c", servers.dovecotConf, "-o", "mail_location=maildir:\(dir)/M",
                                                       "mailbox", "status", "-u", "target", "messages", "Reçus/Été"])
            #expect(status == 0, "\(out)")
            #expect(out.contains("messages=3"), "\(out)")
        }

        @Test func aMaildirDovecotWroteIsReadWithItsFolderNames() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try await seedInternational(2)
            let r = try mailfunnel(["import", "maildir:\(mailDir)/source", try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json",
                                    "--ca-file", servers.caFile, "--target-password-file", try servers.passwordFile("target", in: dir)])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(jsonSummary(r.stdout)["delivered"] as? Int == 2)
            let dst = try await servers.client("target")
            let names = try await dst.list().map(\.name)
            #expect(names.contains(Self.wire), "\(names)")
            #expect(try await dst.contents(of: Self.wire).count == 2)
            await dst.logout()
        }
    }
}
