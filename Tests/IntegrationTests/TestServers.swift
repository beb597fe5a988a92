import Crypto
import Foundation
@testable import Drivers
import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import IMAPCore
import Logging
import MailTransport
import NIOCore
import Testing

/// Every suite that uses the shared test servers is nested here: `.serialized` applies to nested
/// suites too, so two suites never reset or fill the same mailboxes at once.
@Suite(.serialized) enum Dovecot {}

/// The Dovecot instances `scripts/test-servers` started for this run, read from the env file it
/// wrote (`$MF_SERVERS_ENV`). Without it the integration tests fail: a skipped integration test
/// would hide a broken CI.
struct TestServers {
    let values: [String: String]
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func load() throws -> TestServers {
        guard let path = ProcessInfo.processInfo.environment["MF_SERVERS_ENV"] else {
            throw SetupError("MF_SERVERS_ENV is not set: run the tests with scripts/test, which starts Dovecot (scripts/test-servers start DIR) and sets it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SetupError("cannot read \(path), the test servers' env file")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.contains("=") && !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            values[String(parts[0])] = value
        }
        return TestServers(values: values)
    }

    func port(_ key: String) throws -> Int {
        guard let v = values[key], let p = Int(v) else { throw SetupError("\(key) missing from the test servers' env file") }
        return p
    }

    /// A figure from the env file (a port, a size limit).
    func number(_ key: String) throws -> Int { try port(key) }

    var caFile: String { values["MF_CA_FILE"] ?? "" }
    var dir: String { values["MF_TEST_DIR"] ?? "" }
    var dovecotConf: String { values["MF_DOVECOT_CONF"] ?? "" }

    func password(_ user: String) -> String { "\(user)-pw" }

    /// A file holding a user's password, for --source-password-file and the like.
    func passwordFile(_ user: String, in dir: String) throws -> String {
        let path = "\(dir)/\(user).pass"
        try (password(user) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    /// Empties every mailbox of a user. A session a simulated crash left behind may still be closing,
    /// so a failure is retried twice before it counts, and then reported with doveadm's words.
    func reset(_ user: String) throws {
        var output = ""
        for attempt in 0..<3 {
            if attempt > 0 { usleep(300_000) }
            let (status, out) = try Self.shell([Self.packageRoot.appendingPathComponent("scripts/test-servers").path, "reset", dir, user])
            if status == 0 { return }
            output = out
        }
        throw SetupError("scripts/test-servers reset \(user) failed: \(output)")
    }

    /// A logged-in IMAPS session.
    func client(_ user: String) async throws -> IMAPClient {
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: try port("MF_IMAPS_PORT"), tls: .implicit, caFile: caFile)
        let c = try await IMAPClient.connect(to: endpoint, logger: Logger(label: "test"))
        try await c.login(Credentials(user: user, password: password(user)))
        return c
    }

    /// Runs a command and returns its exit status and output (doveadm and the like).
    @discardableResult
    static func shell(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Message bytes for APPEND from an array.
struct BytesBody: AppendBody {
    let bytes: [UInt8]
    var size: Int { bytes.count }
    func readChunk(at offset: Int, maxLength: Int) throws -> ByteBuffer {
        ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + maxLength)])
    }
}

/// One message as a mailbox holds it.
struct StoredMessage: Hashable, Comparable {
    var bytes: [UInt8]
    var flags: Set<String>
    var date: Date?

    static func < (a: StoredMessage, b: StoredMessage) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Short SHA-256 prefixes, sorted: what a failed comparison should print instead of bytes.
func digests(_ messages: [[UInt8]]) -> [String] {
    messages.map { Array(SHA256.hash(data: $0)).prefix(6).map { String(format: "%02x", $0) }.joined() }.sorted()
}

/// Digest, flags and date of each message, sorted: equal exactly when the mailboxes hold the same
/// messages with the same flags and dates, and readable when they do not.
func summary(_ messages: [StoredMessage]) -> [String] {
    messages.map { m in
        digests([m.bytes])[0] + " " + m.flags.sorted().joined(separator: ",") + " " + (m.date.map { InternalDate.format($0) } ?? "-")
    }.sorted()
}

extension IMAPClient {
    /// Every message of a mailbox, with flags (\Recent dropped) and INTERNALDATE.
    func contents(of mailbox: String) async throws -> [StoredMessage] {
        let s = try await select(mailbox, readOnly: true)
        guard s.exists > 0 else { return [] }
        var out: [StoredMessage] = []
        var current = StoredMessage(bytes: [], flags: [], date: nil)
        try await uidFetch(UIDSet([1...UInt32.max]), items: ["UID", "FLAGS", "INTERNALDATE", "BODY.PEEK[]"]) { e in
            switch e {
            case .fetchBegan: current = StoredMessage(bytes: [], flags: [], date: nil)
            case let .fetchAttribute(.flags(f)): current.flags = Set(f.filter { $0 != "\\Recent" })
            case let .fetchAttribute(.internalDate(d)): current.date = InternalDate.parse(d)
            case let .fetchBodyBytes(b): current.bytes += b.readableBytesView
            case .fetchEnded: out.append(current)
            default: break
            }
        }
        return out.sorted()
    }

    /// Appends test messages with flags and dates.
    func seed(_ mailbox: String, _ messages: [StoredMessage]) async throws {
        if mailbox != "INBOX" { try? await create(mailbox) }
        for m in messages {
            try await append([AppendItem(flags: Array(m.flags).sorted(), date: m.date, body: BytesBody(bytes: m.bytes))], to: mailbox)
        }
    }
}

/// Varied CRLF messages (what IMAP stores), with flags and dates.
func imapMessages(_ count: Int, tag: String) -> [StoredMessage] {
    (0..<count).map { i in
        var text = "From: sender\(i)@example.org\r\nTo: me@example.org\r\nSubject: \(tag) \(i) é\r\n"
        if i % 4 != 2 { text += "Message-ID: <\(tag)-\(i)@test>\r\n" }
        text += "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
        for l in 0..<(1 + (i * 7) % 30) { text += "line \(l) of \(tag) message \(i)\r\n" }
        let flags: Set<String> = i % 3 == 0 ? ["\\Seen"] : i % 3 == 1 ? ["\\Flagged", "\\Answered"] : []
        return StoredMessage(bytes: Array(text.utf8), flags: flags, date: Date(timeIntervalSince1970: 1_600_000_000 + Double(i) * 86400))
    }
}

extension TestServers {
    /// How a test reaches a user's account: the password inline, the test CA trusted.
    func settings(for user: String) -> EndpointSettings {
        var s = EndpointSettings(passwordVariable: "UNUSED")
        s.secret = Config.Secret(inline: password(user))
        s.caFile = caFile
        return s
    }

    /// Waits until the private Postfix has handed everything to Dovecot.
    func flushMailQueue() throws {
        let (status, out) = try Self.shell([Self.packageRoot.appendingPathComponent("scripts/test-servers").path, "flush", dir])
        guard status == 0 else { throw SetupError("scripts/test-servers flush failed: \(out)") }
    }
}

/// The message as its sender wrote it: the trace headers a relay and LMTP put on top (Return-Path,
/// Delivered-To, Received, with their folded lines) removed.
func withoutTraceHeaders(_ bytes: [UInt8]) -> [UInt8] {
    var i = 0
    var removing = false
    while i < bytes.count {
        guard let lf = bytes[i...].firstIndex(of: 0x0A) else { break }
        let line = String(decoding: bytes[i..<lf], as: UTF8.self).lowercased()
        let folded = line.first == " " || line.first == "\t"
        let trace = line.hasPrefix("return-path:") || line.hasPrefix("delivered-to:") || line.hasPrefix("received:")
        if trace || (folded && removing) {
            removing = true
            i = lf + 1
            continue
        }
        break
    }
    return Array(bytes[i...])
}

/// One run of a crash test: stopped right after side effect `stopAfter` (a crash), or run to the
/// end when nil; returns how many side effects it performed.
typealias CrashableRun = (_ ledger: String, _ stopAfter: Int?) async throws -> Int

/// A run inside the test process: the hook throws at the side effect, and the run unwinds.
func inProcess(_ body: @escaping (_ ledger: String, _ hook: @escaping (SideEffect) throws -> Void) async throws -> Void) -> CrashableRun {
    { ledger, stopAfter in
        let seen = Counter()
        do {
            try await body(ledger) { _ in
                seen.n += 1
                if seen.n == stopAfter { throw Crash() }
            }
        } catch is Crash {}
        return seen.n
    }
}

/// A run of the built binary with the hidden `--stop-after-effect N`: the process ends at once after
/// effect N (`_exit`, nothing unwinds, tasks in flight die with it), as mbsync's `-Ts` does.
func asProcess(_ arguments: @escaping (_ ledger: String) throws -> [String]) -> CrashableRun {
    { ledger, stopAfter in
        let run = try mailfunnel(try arguments(ledger) + ["--stop-after-effect", "\(stopAfter ?? Int(Int32.max))"])
        if let stopAfter {
            #expect(run.status == 86, "side effect \(stopAfter): the run was not stopped (status \(run.status)): \(run.stderr)")
            return stopAfter
        }
        #expect(run.status == 0, "a clean run failed (status \(run.status)): \(run.stderr)")
        guard let line = run.stderr.split(separator: "\n").last(where: { $0.hasPrefix("mailfunnel: side effects: ") }),
              let n = Int(line.dropFirst("mailfunnel: side effects: ".count)) else {
            throw SetupError("the run did not say how many side effects it had: \(run.stderr)")
        }
        return n
    }
}

/// mbsync's discipline: count the side effects of a clean run; then for each k, `reset`, stop the
/// run right after effect k, `afterCrash(k)`, resume with a clean run, `resumed(k)`.
func assertSurvivesEveryCrash(minimumEffects: Int, workDir dir: String, reset: () async throws -> Void,
                              afterCrash: (_ point: String) async throws -> Void = { _ in },
                              resumed: (_ point: String) async throws -> Void, run: CrashableRun) async throws {
    try await reset()
    let total = try await run("\(dir)/count.sqlite", nil)
    #expect(total >= minimumEffects)
    for k in 1...total {
        try await reset()
        let ledger = "\(dir)/l\(k).sqlite"
        _ = try await run(ledger, k)
        try await afterCrash("crash point \(k) of \(total)")
        _ = try await run(ledger, nil)
        try await resumed("crash point \(k) of \(total)")
        #expect(try SQLiteLedger(path: ledger).pending(account: nil).isEmpty, "crash point \(k) of \(total): pending rows left")
    }
}

extension TestServers {
    /// mbsync's discipline for a move (delete after delivery) from the source account's INBOX to
    /// the target's: after each crash every message is at the source or at the target (never
    /// neither); after the resumed run the target holds each message exactly once and the source
    /// none. `keepsFlags`: compare flags and dates too (IMAP), or bytes only (POP3 has no flags).
    func assertMoveSurvivesEveryCrash(_ messages: [StoredMessage], minimumEffects: Int, keepsFlags: Bool, workDir dir: String,
                                      run: CrashableRun) async throws {
        func inbox(_ user: String) async throws -> [StoredMessage] {
            let c = try await client(user)
            let stored = try await c.contents(of: "INBOX")
            await c.logout()
            return stored
        }
        func view(_ m: [StoredMessage]) -> [String] { keepsFlags ? summary(m) : digests(m.map(\.bytes)) }
        try await assertSurvivesEveryCrash(minimumEffects: minimumEffects, workDir: dir, reset: {
            try reset("source")
            try reset("target")
            let c = try await client("source")
            try await c.seed("INBOX", messages)
            await c.logout()
        }, afterCrash: { point in
            let left = try await inbox("source").map(\.bytes), there = try await inbox("target").map(\.bytes)
            for m in messages where !left.contains(m.bytes) && !there.contains(m.bytes) {
                Issue.record("\(point): a message is neither at the source nor at the target")
            }
        }, resumed: { point in
            let there = try await inbox("target"), left = try await inbox("source")
            #expect(view(there) == view(messages), "\(point): the target differs")
            #expect(left.isEmpty, "\(point): the source still holds messages")
        }, run: run)
    }
}
