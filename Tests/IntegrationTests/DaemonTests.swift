import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MailTransport
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import Testing

/// A `mailfunnel run` child process, stopped by PID (SIGTERM) at the end.
final class Daemon {
    let process = Process()
    let log: String

    init(config: String, dir: String) throws {
        let binary = ProcessInfo.processInfo.environment["MAILFUNNEL_BIN"]
            ?? TestServers.packageRoot.appendingPathComponent(".build/debug/mailfunnel").path
        log = "\(dir)/daemon.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--config", config, "--log-format", "logfmt"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then the exit status (nil if it did not stop within `seconds`; then it is killed).
    func stop(within seconds: Double = 10) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit { if process.isRunning { _ = stop() } }
}

/// A TCP port nobody listens on right now (bound to 0, read, closed).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard bound == 0 else { throw SetupError("cannot bind a probe socket") }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// GET over plain HTTP on loopback (the metrics endpoint), with a few tries while it starts.
func httpGet(_ url: String) async throws -> String {
    var last: Error?
    for _ in 0..<20 {
        do {
            let (data, _) = try await URLSession.shared.data(from: URL(string: url)!)
            return String(decoding: data, as: UTF8.self)
        } catch {
            last = error
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    throw last!
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns how long it took.
func eventually(within seconds: Double, _ condition: () async throws -> Bool) async throws -> Double? {
    let start = Date()
    while Date().timeIntervalSince(start) < seconds {
        if try await condition() { return Date().timeIntervalSince(start) }
        try await Task.sleep(for: .milliseconds(50))
    }
    return nil
}

extension Dovecot {
@Suite struct DaemonTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
        for user in ["source", "target", "other"] { try servers.reset(user) }
    }

    func config(_ dir: String, accounts: String, metricsPort: Int? = nil) throws -> String {
        let path = "\(dir)/mf.toml"
        let imaps = try servers.port("MF_IMAPS_PORT")
        try """
            ledger = "\(dir)/ledger.sqlite"
            [daemon]
            poll_interval = "1s"
            \(metricsPort.map { "metrics_listen = \"127.0.0.1:\($0)\"" } ?? "")
            [targets.home]
            url = "imaps://target@127.0.0.1:\(imaps)/INBOX"
            password_file = "\(try servers.passwordFile("target", in: dir))"
            ca_file = "\(servers.caFile)"
            [targets.local]
            url = "maildir:\(dir)/Local"
            \(accounts)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func count(_ user: String) async throws -> Int {
        let c = try await servers.client(user)
        let n = try await c.contents(of: "INBOX").count
        await c.logout()
        return n
    }

    @Test func idlePushDeliversWithinSecondsAndSIGTERMStopsCleanly() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let metricsPort = try freePort()
        let path = try config(dir, accounts: """
            [[accounts]]
            name = "pushed"
            source = "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "home"
            idle = true
            poll_interval = "10m"
            """, metricsPort: metricsPort)
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(2, tag: "before"))
        let daemon = try Daemon(config: path, dir: dir)
        #expect(try await eventually(within: 15) { try await count("target") == 2 } != nil, "log: \(daemon.output)")
        try await Task.sleep(for: .milliseconds(500))  // let it settle into IDLE
        try await src.seed("INBOX", imapMessages(1, tag: "pushed"))
        await src.logout()
        let latency = try await eventually(within: 5) { try await count("target") == 3 }
        #expect(latency != nil, "not delivered within 5 s; log: \(daemon.output)")
        print("IDLE delivery latency: \(latency.map { String(format: "%.2f s", $0) } ?? "more than 5 s")")
        // status reads the same ledger while the daemon runs.
        try await Task.sleep(for: .milliseconds(300))
        let status = try mailfunnel(["status", "--config", path, "--json"])
        let accounts = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
        let pushed = try #require(accounts.first { $0["name"] as? String == "pushed" })
        #expect(pushed["waiting"] as? String == "idle", "status: \(status.stdout)")
        #expect(pushed["lastSuccess"] != nil)
        #expect((pushed["counts"] as? [String: Int])?["delivered"] == 3)
        // The Prometheus endpoint counts exactly what was delivered.
        let health = try await httpGet("http://127.0.0.1:\(metricsPort)/healthz")
        #expect(health == "ok\n")
        let metrics = try await httpGet("http://127.0.0.1:\(metricsPort)/metrics")
        #expect(metrics.contains("mailfunnel_messages_delivered_total{account=\"pushed\"} 3"), "metrics: \(metrics)")
        #expect(metrics.contains("mailfunnel_last_success_timestamp_seconds{account=\"pushed\"}"))
        #expect(metrics.contains("mailfunnel_poll_duration_seconds"))
        #expect(daemon.stop(within: 10) == 0, "log: \(daemon.output)")
        #expect(try SQLiteLedger(path: "\(dir)/ledger.sqlite").pending(account: nil).isEmpty)
    }

    /// IDLE watches INBOX; mail filed into another folder arrives within the account's poll
    /// interval, not IDLE's 25-minute refresh.
    @Test func withIdleTheOtherFoldersArePolled() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try config(dir, accounts: """
            [[accounts]]
            name = "pushed"
            source = "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "local"
            idle = true
            poll_interval = "2s"
            """)
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(1, tag: "inbox"))
        let daemon = try Daemon(config: path, dir: dir)
        #expect(try await eventually(within: 15) { (try? maildirMessages("\(dir)/Local").count) == 1 } != nil, "log: \(daemon.output)")
        try await Task.sleep(for: .milliseconds(500))  // into IDLE on INBOX
        try await src.seed("Lists", imapMessages(2, tag: "filed"))
        await src.logout()
        let took = try await eventually(within: 10) { (try? maildirMessages("\(dir)/Local/.Lists").count) == 2 }
        #expect(took != nil, "not delivered within 10 s; log: \(daemon.output)")
        #expect(daemon.stop(within: 10) == 0, "log: \(daemon.output)")
    }

    @Test func aPolledAccountPicksUpNewMailWhileABadOneBacksOff() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "wrong\n".write(toFile: "\(dir)/bad.pass", atomically: true, encoding: .utf8)
        let path = try config(dir, accounts: """
            [[accounts]]
            name = "polled"
            source = "pop3s://source@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "local"
            [[accounts]]
            name = "broken"
            source = "imaps://other@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(dir)/bad.pass"
            ca_file = "\(servers.caFile)"
            target = "local"
            """)
        let daemon = try Daemon(config: path, dir: dir)
        try await Task.sleep(for: .seconds(1))
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(3, tag: "polled"))
        await src.logout()
        let took = try await eventually(within: 10) { (try? maildirMessages("\(dir)/Local").count) == 3 }
        #expect(took != nil, "log: \(daemon.output)")
        // The bad password is refused once for each way that could still let it in (SCRAM-SHA-256,
        // PLAIN, CRAM-MD5), each refusal after Dovecot's failure delay.
        let refused = try await eventually(within: 10) { daemon.output.contains("next attempt in") }
        #expect(refused != nil, "log: \(daemon.output)")
        #expect(daemon.process.isRunning)
        #expect(daemon.stop() == 0)
        #expect(daemon.output.contains("login as other refused"))
        #expect(daemon.output.contains("next attempt in"))
        // logfmt, with the account as a field.
        #expect(daemon.output.split(separator: "\n").contains { $0.contains("level=error") && $0.contains("account=broken") })
    }

    @Test func sighupAddsAnAccountAndABadFileIsRefused() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let polled = """
            [[accounts]]
            name = "polled"
            source = "pop3s://source@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "local"
            """
        let path = try config(dir, accounts: polled)
        let daemon = try Daemon(config: path, dir: dir)
        try await Task.sleep(for: .seconds(1))
        // A second account appears in the file; SIGHUP makes it work without a restart.
        _ = try config(dir, accounts: polled + """

            [[accounts]]
            name = "added"
            source = "imaps://other@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(try servers.passwordFile("other", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "home"
            """)
        kill(daemon.process.processIdentifier, SIGHUP)
        let other = try await servers.client("other")
        try await other.seed("INBOX", imapMessages(2, tag: "added"))
        await other.logout()
        #expect(try await eventually(within: 10) { try await count("target") == 2 } != nil, "log: \(daemon.output)")
        // A broken file is refused; what runs keeps running.
        try "[[accounts\n".write(toFile: path, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(1, tag: "still"))
        await src.logout()
        #expect(try await eventually(within: 10) { (try? maildirMessages("\(dir)/Local").count) == 1 } != nil, "log: \(daemon.output)")
        #expect(daemon.output.contains("reload refused"))
        #expect(daemon.stop() == 0, "log: \(daemon.output)")
    }

    /// SIGTERM in the middle of moving a mailbox, then a restart: every message ends at the
    /// target exactly once and the source is emptied.
    @Test func sigtermDuringATransferThenRestartLosesAndDuplicatesNothing() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Large enough that the transfer is still going when the SIGTERM comes.
        let messages = imapMessages(400, tag: "term").map { m in
            StoredMessage(bytes: m.bytes + Array(String(repeating: "padding to make the move take a while\r\n", count: 800).utf8),
                          flags: m.flags, date: m.date)
        }
        let src = try await servers.client("source")
        try await src.append(messages.map { AppendItem(flags: [], date: $0.date, body: BytesBody(bytes: $0.bytes)) }, to: "INBOX")
        await src.logout()
        let path = try config(dir, accounts: """
            [[accounts]]
            name = "moving"
            source = "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "home"
            after_delivery = "delete"
            """)
        let first = try Daemon(config: path, dir: dir)
        // Stop it once some, not all, have arrived.
        _ = try await eventually(within: 20) { let n = try await count("target"); return n > 0 }
        #expect(first.stop(within: 10) == 0, "log: \(first.output)")
        let midway = try await count("target")
        print("SIGTERM after \(midway) of \(messages.count) messages")
        // It stopped at a batch boundary, not at the end of the page (which holds every message).
        #expect(midway < messages.count, "the SIGTERM did not stop the transfer: log: \(first.output)")
        let second = try Daemon(config: path, dir: dir)
        #expect(try await eventually(within: 30) { try await count("source") == 0 } != nil, "log: \(second.output)")
        // Stopped once it serves (its signal handlers are in place), not while it starts.
        #expect(try await eventually(within: 10) { second.output.contains("serving") } != nil, "log: \(second.output)")
        #expect(second.stop() == 0, "log: \(second.output)")
        let dst = try await servers.client("target")
        #expect(digests(try await dst.contents(of: "INBOX").map(\.bytes)) == digests(messages.map(\.bytes)))
        await dst.logout()
    }

    @Test func checkReportsWhatEachServerOffers() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "wrong\n".write(toFile: "\(dir)/bad.pass", atomically: true, encoding: .utf8)
        let good = try config(dir, accounts: """
            [[accounts]]
            name = "imap"
            source = "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
            password_file = "\(try servers.passwordFile("source", in: dir))"
            ca_file = "\(servers.caFile)"
            target = "home"
            """)
        let ok = try mailfunnel(["check", "--config", good])
        #expect(ok.status == 0, "out: \(ok.stdout) err: \(ok.stderr)")
        #expect(ok.stdout.contains("IDLE yes"))
        #expect(ok.stdout.contains("MULTIAPPEND yes"))
        try FileManager.default.removeItem(atPath: good)
        let bad = try config(dir, accounts: """
            [[accounts]]
            name = "bad"
            source = "pop3s://source@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))"
            password_file = "\(dir)/bad.pass"
            ca_file = "\(servers.caFile)"
            target = "local"
            """)
        let refused = try mailfunnel(["check", "--config", bad])
        #expect(refused.status == 77, "out: \(refused.stdout)")
        #expect(refused.stdout.contains("PROBLEM: "))
    }
}
}
