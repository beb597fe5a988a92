import Foundation
@testable import Drivers
@testable import FunnelModel
import Testing

/// A `mailfunnel` child process running beside the test, its output in files.
final class Child {
    let process = Process()
    let dir: String

    init(_ arguments: [String]) throws {
        let binary = ProcessInfo.processInfo.environment["MAILFUNNEL_BIN"]
            ?? TestServers.packageRoot.appendingPathComponent(".build/debug/mailfunnel").path
        dir = NSTemporaryDirectory() + "/mf-child-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["out", "err"] { FileManager.default.createFile(atPath: "\(dir)/\(f)", contents: nil) }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/err"))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for the exit (killing it after `seconds`): status, stdout, stderr.
    func finish(within seconds: Double = 120) -> (status: Int32, stdout: String, stderr: String) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return (process.terminationStatus, (try? String(contentsOfFile: "\(dir)/out", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: "\(dir)/err", encoding: .utf8)) ?? "")
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

extension Dovecot {
    /// One process at a time works on an account of a ledger (`AccountLocks`), against the real Dovecot.
    @Suite struct AccountLockTests {
        let servers: TestServers

        init() throws {
            servers = try TestServers.load()
            try servers.reset("source")
            try servers.reset("target")
        }

        func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }

        func arguments(_ dir: String) throws -> [String] {
            ["import", try imaps("source"), try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json", "--ca-file", servers.caFile,
             "--source-password-file", try servers.passwordFile("source", in: dir),
             "--target-password-file", try servers.passwordFile("target", in: dir)]
        }

        /// Two imports of one account at once: one waits for the other, then finds everything
        /// delivered, so the target holds each message once.
        @Test func twoImportsOfOneAccountAtOnceDeliverEachMessageOnce() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let src = try await servers.client("source")
            try await src.seed("INBOX", imapMessages(300, tag: "twice"))
            await src.logout()

            // Held here first, so both start while it is taken and must take turns after it.
            let account = Endpoints.identity(of: try MailURL.parse(try imaps("source")))
            let held = try AccountLocks(ledgerPath: "\(dir)/l.sqlite").hold(account: account, name: "test", command: "the test's hold")
            let args = try arguments(dir) + ["--wait"]
            let a = try Child(args), b = try Child(args)
            try await Task.sleep(for: .milliseconds(500))
            held.release()
            let ra = a.finish(), rb = b.finish()
            #expect(ra.status == 0, "stderr: \(ra.stderr)")
            #expect(rb.status == 0, "stderr: \(rb.stderr)")
            let delivered = [ra, rb].compactMap { jsonSummary($0.stdout)["delivered"] as? Int }
            #expect(delivered.sorted() == [0, 300])
            #expect((ra.stderr + rb.stderr).contains("another run is working on this account: pid "))

            let dst = try await servers.client("target")
            #expect(try await dst.contents(of: "INBOX").count == 300)
            await dst.logout()
        }

        /// While another process holds the account, an import says who and exits 75 having done
        /// nothing; `status` still reads the ledger; `--wait` goes on once the holder lets go.
        @Test func aRunFindingTheAccountTakenNamesTheHolderOrWaits() async throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let src = try await servers.client("source")
            try await src.seed("INBOX", imapMessages(5, tag: "held"))
            await src.logout()
            let ledger = "\(dir)/l.sqlite"

            let account = Endpoints.identity(of: try MailURL.parse(try imaps("source")))
            let held = try AccountLocks(ledgerPath: ledger).hold(account: account, name: "test", command: "the test's hold")
            let refused = try mailfunnel(try arguments(dir))
            #expect(refused.status == 75)
            #expect(refused.stderr.contains("another run is working on this account: pid \(getpid()) (the test's hold, since "),
                    "stderr: \(refused.stderr)")
            #expect(refused.stderr.contains("--wait"))
            let status = try mailfunnel(["status", "--ledger", ledger])
            #expect(status.status == 0, "stderr: \(status.stderr)")

            let waiting = try Child(try arguments(dir) + ["--wait"])
            try await Task.sleep(for: .seconds(1))
            #expect(waiting.process.isRunning)
            held.release()
            let r = waiting.finish()
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(jsonSummary(r.stdout)["delivered"] as? Int == 5)
        }
    }
}
