import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import IMAPCore
import Logging
import MailTransport
import Synchronization
import Testing

/// Keeps the lines logged to it, for tests that read a protocol trace.
struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        lines.lines.withLock { $0.append(message.description) }
    }
}

final class LogLines: Sendable {
    let lines = Mutex<[String]>([])
    var logger: Logger { Logger(label: "trace") { _ in CapturingLogHandler(lines: self) } }
    var all: [String] { lines.withLock { $0 } }
}

extension Dovecot {
@Suite struct RecoveryTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
    }

    /// After a crash with deliveries pending, much else arrives in the target folder; recovery
    /// reads the bodies of the messages of a pending one's size only, not of all that arrived.
    @Test func recoveryReadsOnlyTheBodiesOfCandidates() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try servers.reset("target")
        let messages = imapMessages(4, tag: "pending").map { m in m.bytes.filter { $0 != 0x0D } }
        var mbox: [UInt8] = []
        for m in messages { mbox += Array("From a@b Sat Jan  3 01:05:34 2004\n".utf8) + m + [0x0A] }
        FileManager.default.createFile(atPath: "\(dir)/in.mbox", contents: Data(mbox))
        let target = "imaps://target@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))"
        // Crash right after the first batch is appended, before its outcomes are committed.
        do {
            _ = try await runTransfer(source: "mbox:\(dir)/in.mbox", target: target, ledgerPath: "\(dir)/l.sqlite",
                                      limits: .init(maxMessages: 2), targetSettings: servers.settings(for: "target"),
                                      afterEffect: { if $0 == .sinkFlush { throw Crash() } })
            Issue.record("the run was not stopped")
        } catch is Crash {}
        let pending = try SQLiteLedger(path: "\(dir)/l.sqlite").pending(account: nil)
        #expect(pending.count >= 2)  // the first batch, and the next one's early intents
        // Then other mail arrives, of other sizes and of the same size as a pending message.
        let dst = try await servers.client("target")
        var others = imapMessages(40, tag: "arrived later")
        others.append(StoredMessage(bytes: Array(repeating: UInt8(ascii: "x"), count: pending[0].size - 2) + [0x0D, 0x0A],
                                    flags: [], date: nil))
        try await dst.seed("INBOX", others)
        _ = try await dst.select("INBOX", readOnly: true)
        var sizes: [UInt32: Int] = [:]
        var lastUID: UInt32 = 0
        try await dst.uidFetch(UIDSet([1...UInt32.max]), items: ["UID", "RFC822.SIZE"]) { event in
            if case let .fetchAttribute(.uid(u)) = event { sizes[u] = 0; lastUID = u }
            if case let .fetchAttribute(.rfc822Size(n)) = event { sizes[lastUID] = n }
        }
        await dst.logout()
        let candidates = Set(sizes.filter { _, size in pending.contains { $0.size == size } }.keys)
        #expect(sizes.count == 43 && candidates.count >= 3 && sizes.count - candidates.count >= 30, "sizes: \(sizes)")

        // Recovery, traced.
        let trace = LogLines()
        var logger = trace.logger
        logger.logLevel = .trace
        let src = try Endpoints.source(try MailURL.parse("mbox:\(dir)/in.mbox"))
        let sink = try Endpoints.sink(try MailURL.parse(target), settings: servers.settings(for: "target"), logger: logger)
        var options = TransferOptions()
        options.limits = .init(maxMessages: 2)
        let summary = try await Transfer(source: src, sink: sink, ledger: try SQLiteLedger(path: "\(dir)/l.sqlite"), options: options,
                                         logger: logger).run()
        #expect(summary.delivered == 2)  // the second batch; the first was found
        let bodyFetches = trace.all.filter { $0.hasPrefix("C: ") && $0.contains("BODY.PEEK[]") }
        var read: Set<UInt32> = []
        for line in bodyFetches {
            // C: a7 UID FETCH 3,5 (UID BODY.PEEK[])
            let set = line.split(separator: " ")[4]
            for part in set.split(separator: ",") {
                let ends = part.split(separator: ":").compactMap { UInt32($0) }
                if ends.count == 2 { read.formUnion(ends[0]...ends[1]) } else if let one = ends.first { read.insert(one) }
            }
        }
        #expect(!read.isEmpty && read.isSubset(of: candidates), "bodies read: \(read.sorted()), candidates: \(candidates.sorted())")
        let after = try await servers.client("target")
        let stored = try await after.contents(of: "INBOX").map(\.bytes)
        await after.logout()
        #expect(digests(stored) == digests(messages.map(crlf) + others.map(\.bytes)))
        #expect(try SQLiteLedger(path: "\(dir)/l.sqlite").pending(account: nil).isEmpty)
    }
}
}
