import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import IMAPCore
import Logging
import MailTransport
import Testing

/// Runs the built binary; output goes to files so nothing blocks on a full pipe.
func mailfunnel(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = ProcessInfo.processInfo.environment["MAILFUNNEL_BIN"]
        ?? TestServers.packageRoot.appendingPathComponent(".build/debug/mailfunnel").path
    guard FileManager.default.isExecutableFile(atPath: binary) else { throw SetupError("no mailfunnel binary at \(binary): build first") }
    let dir = NSTemporaryDirectory() + "/mf-run-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    FileManager.default.createFile(atPath: "\(dir)/out", contents: nil)
    FileManager.default.createFile(atPath: "\(dir)/err", contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    p.environment = env
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/err"))
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return (p.terminationStatus, (try? String(contentsOfFile: "\(dir)/out", encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: "\(dir)/err", encoding: .utf8)) ?? "")
}

func jsonSummary(_ stdout: String) -> [String: Any] {
    guard let line = stdout.split(separator: "\n").last,
          let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return [:] }
    return object
}

func workDir() throws -> String {
    let path = NSTemporaryDirectory() + "/mf-it-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

extension Dovecot {
@Suite struct IMAPIntegrationTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
        try servers.reset("source")
        try servers.reset("target")
    }

    func imaps(_ user: String, _ folder: String = "") throws -> String {
        "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" + (folder.isEmpty ? "" : "/\(folder)")
    }

    func auth(_ dir: String) throws -> [String] {
        ["--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir),
         "--target-password-file", try servers.passwordFile("target", in: dir)]
    }

    @Test func imapToIMAPKeepsBytesFlagsDatesAndFolders() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try await servers.client("source")
        let inbox = imapMessages(6, tag: "inbox"), old = imapMessages(4, tag: "old"), nested = imapMessages(3, tag: "nested"),
            intl = imapMessages(2, tag: "intl")
        try await src.seed("INBOX", inbox)
        try await src.seed("Old", old)
        try await src.seed("Old/Sub", nested)
        try await src.seed(ModifiedUTF7.encode("Ärger"), intl)
        await src.logout()

        let args = ["import", try imaps("source"), try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json"] + (try auth(dir))
        let first = try mailfunnel(args)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(jsonSummary(first.stdout)["delivered"] as? Int == 15)

        let dst = try await servers.client("target")
        #expect(summary(try await dst.contents(of: "INBOX")) == summary(inbox))
        #expect(summary(try await dst.contents(of: "Old")) == summary(old))
        #expect(summary(try await dst.contents(of: "Old/Sub")) == summary(nested))
        #expect(summary(try await dst.contents(of: ModifiedUTF7.encode("Ärger"))) == summary(intl))
        await dst.logout()

        let second = try mailfunnel(args)
        #expect(second.status == 0)
        #expect(jsonSummary(second.stdout)["delivered"] as? Int == 0)
    }

    @Test func mboxToIMAPFolderThenNothing() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sample = TestServers.packageRoot.appendingPathComponent("samples/sample.mbox").path
        let args = ["import", "mbox:\(sample)", try imaps("target", "Archive/Old mail"), "--ledger", "\(dir)/l.sqlite", "--json",
                    "--ca-file", servers.caFile, "--target-password-file", try servers.passwordFile("target", in: dir)]
        let first = try mailfunnel(args)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(jsonSummary(first.stdout)["delivered"] as? Int == 41)
        // Byte for byte once line ends are CRLF (what IMAP requires); Status flags became IMAP flags.
        let dst = try await servers.client("target")
        let stored = try await dst.contents(of: "Archive/Old mail")
        await dst.logout()
        #expect(stored.count == 41)
        let local = try await runTransfer(source: "mbox:\(sample)", target: "maildir:\(dir)/M", ledgerPath: "\(dir)/local.sqlite")
        #expect(local.delivered == 41)
        let expected = try maildirMessages("\(dir)/M").map { crlf($0) }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(digests(stored.map(\.bytes)) == digests(expected))
        #expect(stored.contains { $0.flags == ["\\Seen", "\\Flagged", "\\Answered"] })
        #expect(jsonSummary(try mailfunnel(args).stdout)["delivered"] as? Int == 0)
    }

    @Test func aUIDVALIDITYResetDeliversNothingNew() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try await servers.client("source")
        let messages = imapMessages(5, tag: "uv")
        try await src.seed("INBOX", messages)
        let before = try await src.select("INBOX").uidValidity
        await src.logout()
        let args = ["import", try imaps("source"), try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json"] + (try auth(dir))
        #expect(jsonSummary(try mailfunnel(args).stdout)["delivered"] as? Int == 5)

        // The server renumbers the mailbox: new UIDVALIDITY, new UIDs, same messages.
        let (status, out) = try TestServers.shell(["doveadm", "-c", servers.dovecotConf, "mailbox", "update", "-u", "source",
                                                   "--uid-validity", String(before + 1000), "INBOX"])
        #expect(status == 0, "doveadm: \(out)")
        let check = try await servers.client("source")
        let after = try await check.select("INBOX").uidValidity
        await check.logout()
        #expect(after != before)

        let again = try mailfunnel(args)
        #expect(again.status == 0, "stderr: \(again.stderr)")
        #expect(jsonSummary(again.stdout)["delivered"] as? Int == 0)
        // At the default level one line says what happened to the mailbox, not one per message.
        let told = again.stderr.split(separator: "\n").filter { $0.contains("renumbered") || $0.contains("same content") }
        #expect(told.count == 1, "stderr: \(again.stderr)")
        #expect(told.first?.contains("INBOX: 5 message(s) renumbered by the server (new UIDVALIDITY) were delivered before") == true,
                "stderr: \(again.stderr)")
        let dst = try await servers.client("target")
        #expect(try await dst.contents(of: "INBOX").count == 5)
        await dst.logout()
    }

    /// After a run stopped between its intents and its deliveries, the next run's recovery says
    /// in one line what it found, at the default level; one line per message only at -v.
    @Test func recoveryIsToldInOneLine() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(20, tag: "told"))
        await src.logout()
        let args = ["import", try imaps("source"), try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--batch-messages", "10"]
            + (try auth(dir))
        let stopped = try mailfunnel(args + ["--stop-after-effect", "1"])
        #expect(stopped.status == 86, "stderr: \(stopped.stderr)")
        let resumed = try mailfunnel(args)
        #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
        let told = resumed.stderr.split(separator: "\n").filter { $0.contains("recovery") }
        #expect(told.count == 1, "stderr: \(resumed.stderr)")
        #expect(told.first?.contains("recovery: 10 message(s) an interrupted run left pending: 0 found at the target (recorded as delivered), 10 not there (delivered again)") == true,
                "stderr: \(resumed.stderr)")
        let dst = try await servers.client("target")
        #expect(try await dst.contents(of: "INBOX").count == 20)
        await dst.logout()
    }

    /// -vv traces the conversation as its wire lines, both ways, without the password.
    @Test func aTraceShowsTheWireLines() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(2, tag: "trace"))
        await src.logout()
        let r = try mailfunnel(["import", try imaps("source"), "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "-vv",
                                "--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir)])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("S: * OK [CAPABILITY IMAP4rev1"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("S: * 2 EXISTS"))
        #expect(r.stderr.contains(" <redacted>"))
        #expect(r.stderr.range(of: #"S: \* \d+ FETCH \(.*\{\d+\} <\d+ bytes>"#, options: .regularExpression) != nil, "stderr: \(r.stderr)")
        #expect(!r.stderr.contains("untagged("))
        #expect(!r.stderr.contains(servers.password("source")))
    }

    @Test func deleteAfterDeliveryExpungesOnlyWhatWasDelivered() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try await servers.client("source")
        try await src.seed("INBOX", imapMessages(4, tag: "del"))
        await src.logout()
        let args = ["import", try imaps("source"), try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json",
                    "--after-delivery", "delete"] + (try auth(dir))
        let r = try mailfunnel(args)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(jsonSummary(r.stdout)["disposed"] as? Int == 4)
        let check = try await servers.client("source")
        #expect(try await check.contents(of: "INBOX").isEmpty)
        await check.logout()
        let dst = try await servers.client("target")
        #expect(try await dst.contents(of: "INBOX").count == 4)
        await dst.logout()
    }

    /// MULTIAPPEND is all or nothing: when Dovecot refuses the batch because of one message (a
    /// zero-byte one), the others are appended one by one and only that one fails, staying at
    /// the source.
    @Test func aRefusedMessageInAMultiappendFailsAlone() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = imapMessages(4, tag: "multi").map { $0.bytes }
        for sub in ["tmp", "new", "cur"] { try FileManager.default.createDirectory(atPath: "\(dir)/src/\(sub)", withIntermediateDirectories: true) }
        for (i, m) in (messages + [[]]).enumerated() {
            FileManager.default.createFile(atPath: "\(dir)/src/new/17000000\(i).M\(i).host", contents: Data(m))
        }
        let r = try mailfunnel(["import", "maildir:\(dir)/src", try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json",
                                "--after-delivery", "delete", "--ca-file", servers.caFile,
                                "--target-password-file", try servers.passwordFile("target", in: dir)])
        #expect(r.status == 65, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("zero byte"))
        #expect(jsonSummary(r.stdout)["delivered"] as? Int == 4)
        #expect(jsonSummary(r.stdout)["failed"] as? Int == 1)
        let dst = try await servers.client("target")
        #expect(digests(try await dst.contents(of: "INBOX").map(\.bytes)) == digests(messages))
        await dst.logout()
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/src/new")
        #expect(left.count == 1)
    }

    /// Maildir++ writes the hierarchy with dots (`.Old.Sub`); the IMAP target uses `/`.
    @Test func maildirFoldersMapToTheTargetsDelimiter() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inbox = imapMessages(2, tag: "mdinbox"), sub = imapMessages(3, tag: "mdsub")
        for (folder, messages) in [("", inbox), ("/.Old.Sub", sub)] {
            for d in ["tmp", "new", "cur"] { try FileManager.default.createDirectory(atPath: "\(dir)/src\(folder)/\(d)", withIntermediateDirectories: true) }
            for (i, m) in messages.enumerated() {
                FileManager.default.createFile(atPath: "\(dir)/src\(folder)/cur/17000000\(i).M\(i).host:2,S", contents: Data(m.bytes))
            }
        }
        let r = try mailfunnel(["import", "maildir:\(dir)/src", try imaps("target"), "--ledger", "\(dir)/l.sqlite", "--json",
                                "--ca-file", servers.caFile, "--target-password-file", try servers.passwordFile("target", in: dir)])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let dst = try await servers.client("target")
        let names = try await dst.list().map(\.name)
        #expect(names.contains("Old/Sub"), "folders: \(names)")
        #expect(digests(try await dst.contents(of: "Old/Sub").map(\.bytes)) == digests(sub.map(\.bytes)))
        #expect(try await dst.contents(of: "INBOX").allSatisfy { $0.flags == ["\\Seen"] })
        await dst.logout()
    }

    @Test func aWrongPasswordExits77() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "wrong\n".write(toFile: "\(dir)/bad.pass", atomically: true, encoding: .utf8)
        let r = try mailfunnel(["import", try imaps("source"), "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite",
                                "--ca-file", servers.caFile, "--source-password-file", "\(dir)/bad.pass"])
        #expect(r.status == 77, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("login as source refused"))
        #expect(!r.stderr.contains("wrong"))
    }

    @Test func anUntrustedCertificateIsRefusedNamingCAFile() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try servers.port("MF_UNTRUSTED_IMAPS_PORT")
        let r = try mailfunnel(["import", "imaps://source@127.0.0.1:\(port)", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite",
                                "--ca-file", servers.caFile, "--source-password-file", try servers.passwordFile("source", in: dir)])
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("--ca-file"), "stderr: \(r.stderr)")
        // And without any CA file, the system store does not trust our test CA either.
        let plain = try mailfunnel(["import", try imaps("source"), "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite",
                                    "--source-password-file", try servers.passwordFile("source", in: dir)])
        #expect(plain.status == 69)
        #expect(plain.stderr.contains("not trusted"))
    }

    @Test func startTLSIsUsedAndRequired() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pass = try servers.passwordFile("source", in: dir)
        let ok = try mailfunnel(["import", "imap://source@127.0.0.1:\(try servers.port("MF_IMAP_PORT"))", "maildir:\(dir)/M",
                                 "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile, "--source-password-file", pass, "--json"])
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        // A server that does not offer STARTTLS is refused before any password is sent.
        let refused = try mailfunnel(["import", "imap://source@127.0.0.1:\(try servers.port("MF_NOSSL_IMAP_PORT"))", "maildir:\(dir)/M",
                                      "--ledger", "\(dir)/l.sqlite", "--source-password-file", pass])
        #expect(refused.status == 69, "stderr: \(refused.stderr)")
        #expect(refused.stderr.contains("does not offer STARTTLS"))
        // Unless plain text is asked for explicitly.
        let plain = try mailfunnel(["import", "imap://source@127.0.0.1:\(try servers.port("MF_NOSSL_IMAP_PORT"))", "maildir:\(dir)/M",
                                    "--ledger", "\(dir)/l.sqlite", "--source-password-file", pass, "--tls", "none"])
        #expect(plain.status == 0, "stderr: \(plain.stderr)")
    }

    @Test func anUnreachableServerExits69() throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A port nobody listens on: bind one, learn its number, close it.
        let r = try mailfunnel(["import", "imaps://source@127.0.0.1:1", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite"],
                               environment: ["MAILFUNNEL_SOURCE_PASSWORD": "x"])
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("cannot connect to 127.0.0.1:1"))
    }
}
}

/// Runs a transfer in-process (as the unit tests do).
func runTransfer(source: String, target: String, ledgerPath: String, disposal: Disposal = .keep,
                 limits: TransferStateMachine.Limits = .init(), sourceSettings: EndpointSettings? = nil,
                 targetSettings: EndpointSettings? = nil, rules: [any DeliveryRule] = [],
                 afterEffect: @escaping (SideEffect) throws -> Void = { _ in }) async throws -> RunSummary {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let s = try MailURL.parse(source), t = try MailURL.parse(target)
    let src = try Endpoints.source(s, settings: sourceSettings ?? EndpointSettings(passwordVariable: "MAILFUNNEL_SOURCE_PASSWORD"),
                                   disposal: disposal, logger: logger)
    let sink = try Endpoints.sink(t, settings: targetSettings ?? EndpointSettings(passwordVariable: "MAILFUNNEL_TARGET_PASSWORD"), logger: logger)
    var options = TransferOptions()
    options.disposal = disposal
    options.limits = limits
    options.rules = rules
    if (t.scheme == .imap || t.scheme == .imaps) && !t.path.isEmpty { options.targetMailbox = t.path }
    let ledger = try SQLiteLedger(path: ledgerPath)
    return try await Transfer(source: src, sink: sink, ledger: ledger, options: options, logger: logger, afterEffect: afterEffect).run()
}

func maildirMessages(_ root: String) throws -> [[UInt8]] {
    try ["new", "cur"].flatMap { sub in
        try ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(sub)")) ?? []).map {
            Array(try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(sub)/\($0)")))
        }
    }
}

func crlf(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var prev: UInt8 = 0
    for b in bytes {
        if b == 0x0A && prev != 0x0D { out.append(0x0D) }
        out.append(b)
        prev = b
    }
    return out
}

extension Dovecot {
@Suite struct IMAPIdleTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
        try servers.reset("other")
    }

    /// A message APPENDed by another client while we IDLE wakes us within seconds.
    @Test func idleReportsNewMail() async throws {
        let watcher = try await servers.client("other")
        _ = try await watcher.select("INBOX")
        let started = ContinuousClock.now
        async let appended: Void = {
            try await Task.sleep(for: .milliseconds(300))
            let writer = try await servers.client("other")
            try await writer.seed("INBOX", imapMessages(1, tag: "idle"))
            await writer.logout()
        }()
        let woke = try await watcher.idle(timeout: .seconds(20))
        try await appended
        #expect(woke)
        #expect(ContinuousClock.now - started < .seconds(5))
        // Silence is not an error: a short IDLE with nothing new returns false, connection intact.
        #expect(try await watcher.idle(timeout: .milliseconds(500)) == false)
        try await watcher.noop()
        await watcher.logout()
    }
}
}
