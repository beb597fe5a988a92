import Foundation
import Testing

extension Dovecot {
    /// Records are per source and target (`LedgerAccount`), against the real Dovecot: a source
    /// already copied into one place is copied whole into a second one.
    @Suite struct SecondTargetTests {
        let servers: TestServers

        init() throws {
            servers = try TestServers.load()
            try servers.reset("source")
            try servers.reset("target")
        }

        func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }

        func importing(into target: String, _ dir: String, json: Bool = true) throws -> (status: Int32, stdout: String, stderr: String) {
            try mailfunnel(["import", try imaps("source"), target, "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile,
                            "--source-password-file", try servers.passwordFile("source", in: dir),
                            "--target-password-file", try servers.passwordFile("target", in: dir)] + (json ? ["--json"] : []))
        }

        func files(in maildir: String) -> Int {
            ["new", "cur"].reduce(0) { $0 + ((try? FileManager.default.contentsOfDirectory(atPath: "\(maildir)/\($1)"))?.count ?? 0) }
        }

        /// Into a Maildir, then into an IMAP account and a second Maildir: each gets every message;
        /// a rerun into the first delivers nothing and says the earlier runs did it; `status` shows
        /// each target with its own counts.
        @Test func aSecondTargetOfOneSourceGetsEverything() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let src = try await servers.client("source")
            try await src.seed("INBOX", imapMessages(12, tag: "second"))
            await src.logout()

            let first = try importing(into: "maildir:\(dir)/first", dir)
            #expect(first.status == 0, "stderr: \(first.stderr)")
            #expect(jsonSummary(first.stdout)["delivered"] as? Int == 12)
            let imap = try importing(into: try imaps("target"), dir)
            #expect(imap.status == 0, "stderr: \(imap.stderr)")
            #expect(jsonSummary(imap.stdout)["delivered"] as? Int == 12)
            let second = try importing(into: "maildir:\(dir)/second", dir)
            #expect(jsonSummary(second.stdout)["delivered"] as? Int == 12)
            #expect(files(in: "\(dir)/first") == 12)
            #expect(files(in: "\(dir)/second") == 12)
            let dst = try await servers.client("target")
            #expect(try await dst.contents(of: "INBOX").count == 12)
            await dst.logout()

            let again = try importing(into: "maildir:\(dir)/first", dir, json: false)
            #expect(again.status == 0, "stderr: \(again.stderr)")
            #expect(again.stderr.contains("12 listed, 0 delivered"), "stderr: \(again.stderr)")
            #expect(again.stderr.contains("(12 done into maildir:/"), "stderr: \(again.stderr)")
            #expect(again.stderr.contains("/first by earlier runs)"), "stderr: \(again.stderr)")
            #expect(files(in: "\(dir)/first") == 12)

            let status = try mailfunnel(["status", "--ledger", "\(dir)/l.sqlite", "--json"])
            #expect(status.status == 0, "stderr: \(status.stderr)")
            let accounts = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
            #expect(accounts.count == 3)
            for a in accounts {
                #expect(a["source"] as? String == "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))")
                #expect((a["counts"] as? [String: Int])?["delivered"] == 12, "\(a)")
            }
            #expect(Set(accounts.compactMap { $0["target"] as? String }).count == 3)
        }
    }
}
