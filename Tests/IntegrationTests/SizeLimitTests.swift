import Foundation
import Testing

extension Dovecot {
    /// Messages larger than a target takes, against the real Dovecot and Postfix: skipped with the
    /// reason, not failed, and never the whole batch sent again one by one.
    @Suite struct SizeLimitTests {
        let servers: TestServers

        init() throws {
            servers = try TestServers.load()
            try servers.reset("source")
            try servers.reset("small")
        }

        func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }

        func big(_ size: Int, tag: String) -> StoredMessage {
            var text = "From: big@example.org\r\nTo: me@example.org\r\nSubject: \(tag)\r\nMessage-ID: <\(tag)@test>\r\n\r\n"
            let line = String(repeating: "x", count: 76) + "\r\n"
            while text.utf8.count < size { text += line }
            return StoredMessage(bytes: Array(text.utf8), flags: [], date: nil)
        }

        /// Dovecot refuses a message over `quota_max_mail_size` with [LIMIT] and announces no
        /// APPENDLIMIT: the refused MULTIAPPEND is halved until the one at fault is alone, which is
        /// skipped with Dovecot's words; the others are delivered, and a rerun sends nothing.
        @Test func aMessageTheTargetRefusesAsTooLargeIsSkippedNotFailed() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let limit = try servers.number("MF_SMALL_LIMIT")
            var messages = imapMessages(7, tag: "limit")
            messages.insert(big(limit + 10_000, tag: "too big"), at: 3)
            let src = try await servers.client("source")
            try await src.seed("INBOX", messages)
            await src.logout()

            let args = ["import", try imaps("source"), try imaps("small"), "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile,
                        "--source-password-file", try servers.passwordFile("source", in: dir),
                        "--target-password-file", try servers.passwordFile("small", in: dir)]
            let first = try mailfunnel(args + ["--json"])
            #expect(first.status == 0, "stderr: \(first.stderr)")
            let s = jsonSummary(first.stdout)
            #expect(s["delivered"] as? Int == 7, "\(s)")
            #expect(s["skipped"] as? Int == 1, "\(s)")
            #expect(s["failed"] as? Int == 0, "\(s)")
            #expect(first.stderr.contains("[LIMIT] Mail size is larger than the maximum size"), "stderr: \(first.stderr)")
            #expect(first.stderr.contains("); skipped"), "stderr: \(first.stderr)")
            #expect(!first.stderr.contains("one by one"), "stderr: \(first.stderr)")
            #expect(!first.stderr.contains("other(name:"), "stderr: \(first.stderr)")
            let dst = try await servers.client("small")
            #expect(try await dst.contents(of: "INBOX").count == 7)
            await dst.logout()

            let again = try mailfunnel(args + ["--json"])
            #expect(again.status == 0, "stderr: \(again.stderr)")
            #expect(jsonSummary(again.stdout)["delivered"] as? Int == 0)
            #expect(jsonSummary(again.stdout)["skipped"] as? Int == 0)
            #expect(jsonSummary(again.stdout)["earlier"] as? Int == 8)
        }

        /// Postfix announces SIZE: a message the listing says is larger is skipped before its body
        /// is read from the source.
        @Test func aMessageListedLargerThanTheTargetTakesIsNotDownloaded() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let limit = try servers.number("MF_SMTP_SIZE_LIMIT")
            let src = try await servers.client("source")
            try await src.seed("INBOX", [big(limit + 1000, tag: "huge")] + imapMessages(2, tag: "fits"))
            await src.logout()
            let r = try mailfunnel(["import", try imaps("source"), "smtp://source@127.0.0.1:\(try servers.port("MF_SMTP_PORT"))",
                                    "--envelope-to", "target@localhost", "--ledger", "\(dir)/l.sqlite", "--json", "--ca-file", servers.caFile,
                                    "--source-password-file", try servers.passwordFile("source", in: dir),
                                    "--target-password-file", try servers.passwordFile("source", in: dir)])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(jsonSummary(r.stdout)["delivered"] as? Int == 2)
            #expect(jsonSummary(r.stdout)["skipped"] as? Int == 1)
            #expect(r.stderr.contains("as listed is larger than smtp://source@127.0.0.1:"), "stderr: \(r.stderr)")
            #expect(r.stderr.contains("skipped without downloading it"), "stderr: \(r.stderr)")
            try servers.flushMailQueue()
        }
    }
}
