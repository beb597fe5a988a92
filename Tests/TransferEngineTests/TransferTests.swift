import Foundation
import Drivers
@testable import FunnelModel
import FunnelTestSupport
import LedgerSQLite
@testable import TransferEngine
import Logging
import MailMessage
import Synchronization
import Testing

struct CrashInjected: Error {}

/// Builds and runs one transfer with fresh objects, as a new process would.
func runTransfer(source: String, target: String, ledgerPath: String, disposal: Disposal = .keep,
                 limits: TransferStateMachine.Limits = .init(), pageSize: Int = 1000, dryRun: Bool = false, into: String? = nil,
                 deleteAfter: Duration? = nil, clock: @escaping @Sendable () -> Date = { Date() },
                 rules: [any DeliveryRule] = [], sinkWrapper: ((MailSink) -> MailSink)? = nil,
                 afterEffect: @escaping (SideEffect) throws -> Void = { _ in }) async throws -> RunSummary {
    let src = try Endpoints.source(MailURL.parse(source))
    var sink = try Endpoints.sink(MailURL.parse(target))
    if let sinkWrapper { sink = sinkWrapper(sink) }
    var options = TransferOptions()
    options.disposal = disposal
    options.deleteAfter = deleteAfter
    options.clock = clock
    options.limits = limits
    options.pageSize = pageSize
    options.dryRun = dryRun
    options.targetMailbox = into
    options.rules = rules
    let ledger: any Ledger = dryRun && !FileManager.default.fileExists(atPath: ledgerPath) ? MemoryLedger()
        : try SQLiteLedger(path: ledgerPath, readOnly: dryRun)
    var logger = Logger(label: "test")
    logger.logLevel = .warning  // recovery's notes are for people; tests check the ledger instead
    return try await Transfer(source: src, sink: sink, ledger: ledger, options: options, logger: logger,
                              afterEffect: afterEffect).run()
}

/// A sink that hands everything to another; the test sinks below change one thing each.
protocol WrappingSink: MailSink {
    var inner: MailSink { get }
}

extension WrappingSink {
    var identity: String { inner.identity }
    var requiresCRLF: Bool { inner.requiresCRLF }
    var maxMessageSize: Int? { inner.maxMessageSize }
    var readsMessagesAtFlush: Bool { inner.readsMessagesAtFlush }
    func prepare(mailbox: String) async throws -> TargetWatermark { try await inner.prepare(mailbox: mailbox) }
    func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        try await inner.deliver(message, key: key, mailbox: mailbox)
    }
    func flush() async throws -> [SourceKey: StagedOutcome] { try await inner.flush() }
    func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        try await inner.locate(record, taken: taken, unknownCopies: unknownCopies)
    }
    func close() async throws { try await inner.close() }
}

/// A sink that counts the messages it is given in a temporary file rather than in memory.
final class SpoolCheckingSink: WrappingSink {
    let inner: MailSink
    private(set) var spilled = 0
    init(_ inner: MailSink) { self.inner = inner }
    func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        if case .file = message.storage { spilled += 1 }
        return try await inner.deliver(message, key: key, mailbox: mailbox)
    }
    func flushLeavingSettlement() async throws -> (outcomes: [SourceKey: StagedOutcome], settle: Settlement?) {
        try await inner.flushLeavingSettlement()
    }
}

/// A sink that passes everything to a real Maildir sink but fails on cue: the way to test how the
/// engine isolates a bad message or a dying sink without a server.
final class FaultySink: WrappingSink {
    let inner: MailSink
    let fault: (SpooledMessage, Int) -> DeliveryError?
    private var count = 0
    init(_ inner: MailSink, fault: @escaping (SpooledMessage, Int) -> DeliveryError?) {
        self.inner = inner
        self.fault = fault
    }
    func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        count += 1
        if let e = fault(message, count) { throw e }
        return try await inner.deliver(message, key: key, mailbox: mailbox)
    }
}

/// A sink whose link drops at the Nth lookup of a recovery (a flaky mobile or NAT path).
final class DroppingRecoverySink: WrappingSink {
    let inner: MailSink
    let dropAt: Int
    private(set) var lookups = 0
    init(_ inner: MailSink, dropAt: Int) { self.inner = inner; self.dropAt = dropAt }
    func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        lookups += 1
        if lookups == dropAt { throw DeliveryError(.sinkFailed, "connection reset during recovery") }
        return try await inner.locate(record, taken: taken, unknownCopies: unknownCopies)
    }
}

/// A sink with a size limit (what IMAP APPENDLIMIT and SMTP SIZE will give).
final class LimitedSink: WrappingSink {
    let inner: MailSink
    let limit: Int
    init(_ inner: MailSink, limit: Int) { self.inner = inner; self.limit = limit }
    var maxMessageSize: Int? { limit }
}

/// A source that counts the batches it was asked to fetch (from any task).
final class CountingSource: MailSource, @unchecked Sendable {
    let inner: MailSource
    let fetches = Mutex(0)
    init(_ inner: MailSource) { self.inner = inner }
    var identity: String { inner.identity }
    var supportsIncrementalListing: Bool { inner.supportsIncrementalListing }
    var supportedDisposals: Set<Disposal> { inner.supportedDisposals }
    func mailboxes() async throws -> [String] { try await inner.mailboxes() }
    func select(mailbox: String) async throws -> MailboxInfo { try await inner.select(mailbox: mailbox) }
    func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        try await inner.list(mailbox: mailbox, pageSize: pageSize, after: after, page: page)
    }
    func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
        fetches.withLock { $0 += 1 }
        return try await inner.fetch(messages, mailbox: mailbox, makeSpool: makeSpool)
    }
    func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        try await inner.dispose(messages, mailbox: mailbox, how: how)
    }
    func close() async throws -> [String: [String]] { try await inner.close() }
}

/// A Maildir sink whose flush first waits (up to two seconds) for the source to have been asked
/// for the batch after the next one, and notes whether it was.
final class WaitingMaildirSink: WrappingSink {
    let inner: MailSink
    let source: CountingSource
    let batches: Int
    private(set) var flushes = 0
    private(set) var overlapped: [Bool] = []
    init(_ inner: MailSink, source: CountingSource, batches: Int) {
        self.inner = inner
        self.source = source
        self.batches = batches
    }
    func flush() async throws -> [SourceKey: StagedOutcome] {
        flushes += 1
        if flushes + 2 <= batches {
            let deadline = ContinuousClock.now + .seconds(2)
            while source.fetches.withLock({ $0 }) < flushes + 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            overlapped.append(source.fetches.withLock { $0 } >= flushes + 2)
        }
        return try await inner.flush()
    }
}

/// A Maildir sink whose flushes leave their syncs and moves to the transfer, and whose settlement
/// first waits (up to two seconds) for a message of the next batch to be delivered, noting
/// whether one was: the next batch is written while this one is made durable.
final class SettlingMaildirSink: WrappingSink, @unchecked Sendable {
    let inner: MailSink
    let delivered = Mutex(0)
    let overlapped = Mutex<[Bool]>([])
    init(_ inner: MailSink) { self.inner = inner }
    func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        let receipt = try await inner.deliver(message, key: key, mailbox: mailbox)
        delivered.withLock { $0 += 1 }
        return receipt
    }
    func flushLeavingSettlement() async throws -> (outcomes: [SourceKey: StagedOutcome], settle: Settlement?) {
        let (outcomes, settle) = try await inner.flushLeavingSettlement()
        guard let settle else { return (outcomes, nil) }
        let before = delivered.withLock { $0 }
        return (outcomes, Settlement { [self] in
            let deadline = ContinuousClock.now + .seconds(2)
            while delivered.withLock({ $0 }) == before, ContinuousClock.now < deadline { usleep(2_000) }
            overlapped.withLock { $0.append(delivered.withLock { $0 } > before) }
            try settle.run()
        })
    }
}

func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard n.count <= haystack.count else { return false }
    return (0...(haystack.count - n.count)).contains { haystack[$0..<($0 + n.count)].elementsEqual(n) }
}

struct TransferTests {
    @Test func mboxToMaildirByteForByteThenNothing() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 25)
        try writeMbox(dir.file("in.mbox"), messages)
        let first = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                          ledgerPath: dir.file("l.sqlite"), pageSize: 7)
        #expect(first.listed == 25)
        #expect(first.delivered == 25)
        #expect(try maildirContents(dir.file("out")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
        let second = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                           ledgerPath: dir.file("l.sqlite"))
        #expect(second.listed == 25)
        #expect(second.delivered == 0)
        #expect(try maildirContents(dir.file("out")).count == 25)
    }

    @Test func theBundledSampleArrivesWhole() async throws {
        let dir = try TemporaryDirectory()
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples/sample.mbox").path
        let summary = try await runTransfer(source: "mbox:\(sample)", target: "maildir:\(dir.file("out"))",
                                            ledgerPath: dir.file("l.sqlite"))
        #expect(summary.delivered == 41)
        let delivered = try maildirContents(dir.file("out"))
        #expect(delivered.count == 41)
        // The escaped From_ lines come back unescaped, once.
        let fromLines = delivered.first { contains($0, "Ligne From dans le corps") }
        #expect(fromLines.map { contains($0, "\nFrom the desk of Jean") && contains($0, "\n>From a quoted line") } == true)
        // Status: RO + X-Status: AF became Maildir flags.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.file("out/cur"))
        #expect(names.contains { $0.hasSuffix(":2,FRS") })
        #expect(names.contains { $0.hasSuffix(":2,D") })
    }

    /// A Maildir has a message's bytes in tmp/ once `deliver` returns, so its spool is let go of
    /// at once: while a batch is made durable (two file-system syncs), the batch after the next
    /// is already being fetched into that memory. The spool budget here holds two and a half
    /// batches: with the delivered batch still counted, only the next one would be fetched.
    @Test func whileAMaildirBatchIsMadeDurableTheOneAfterNextIsFetched() async throws {
        let dir = try TemporaryDirectory()
        let body = String(repeating: "forty bytes of body text, line by line\n", count: 1_000)
        let messages = (0..<12).map { Array("Subject: m\($0)\n\n\(body)".utf8) }
        try writeMbox(dir.file("src.mbox"), messages)
        let source = CountingSource(try Endpoints.source(MailURL.parse("mbox:\(dir.file("src.mbox"))")))
        let sink = WaitingMaildirSink(try Endpoints.sink(MailURL.parse("maildir:\(dir.file("dst"))")), source: source, batches: 6)
        var options = TransferOptions()
        options.limits = .init(maxMessages: 2)
        let perBatch = 2 * Spool.memoryCost(expectedSize: messages[0].count, options: Spool.Options())
        options.spoolMemory = perBatch * 5 / 2
        let summary = try await Transfer(source: source, sink: sink, ledger: try SQLiteLedger(path: dir.file("l.sqlite")),
                                         options: options).run()
        #expect(summary.delivered == 12)
        #expect(summary.failed == 0)
        #expect(sink.overlapped == [true, true, true, true])
        #expect(try maildirContents(dir.file("dst")).count == 12)
    }

    /// A batch's spools are let go of once it is delivered, whatever fetched them: a long page in
    /// a budget of five batches (the one in hand and three ahead, and room to spare) keeps every
    /// message in memory: none spills to a temporary file.
    @Test func spoolsOfDeliveredBatchesAreLetGoOf() async throws {
        let dir = try TemporaryDirectory()
        let messages = (0..<60).map { Array("Subject: m\($0)\n\n\(String(repeating: "body line \($0)\n", count: 60))".utf8) }
        try writeMbox(dir.file("src.mbox"), messages)
        let sink = SpoolCheckingSink(try Endpoints.sink(MailURL.parse("maildir:\(dir.file("dst"))")))
        var options = TransferOptions()
        options.limits = .init(maxMessages: 4)
        options.spoolMemory = 5 * 4 * Spool.memoryCost(expectedSize: messages[59].count, options: Spool.Options())
        let summary = try await Transfer(source: try Endpoints.source(MailURL.parse("mbox:\(dir.file("src.mbox"))")), sink: sink,
                                         ledger: try SQLiteLedger(path: dir.file("l.sqlite")), options: options).run()
        #expect(summary.delivered == 60)
        #expect(sink.spilled == 0, "\(sink.spilled) of 60 spools went to a temporary file")
    }

    /// A Maildir batch's syncs and moves into place run beside the next batch's writing to tmp/,
    /// and every message still ends up in place, recorded once.
    @Test func aMaildirBatchIsMadeDurableWhileTheNextIsWritten() async throws {
        let dir = try TemporaryDirectory()
        let messages = (0..<6).map { Array("Subject: m\($0)\n\nbody \($0)\n".utf8) }
        try writeMbox(dir.file("src.mbox"), messages)
        let sink = SettlingMaildirSink(try Endpoints.sink(MailURL.parse("maildir:\(dir.file("dst"))")))
        var options = TransferOptions()
        options.limits = .init(maxMessages: 2)
        let ledger = try SQLiteLedger(path: dir.file("l.sqlite"))
        let summary = try await Transfer(source: try Endpoints.source(MailURL.parse("mbox:\(dir.file("src.mbox"))")), sink: sink,
                                         ledger: ledger, options: options).run()
        #expect(summary.delivered == 6)
        // The last batch has no next one to wait for.
        #expect(sink.overlapped.withLock { $0 } == [true, true, false])
        #expect(try maildirContents(dir.file("dst")).count == 6)
        #expect(try ledger.pending(account: "mbox:\(dir.file("src.mbox"))").isEmpty)
    }

    @Test func maildirToMaildirKeepsBytesFlagsAndDates() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 6)
        try makeMaildir(dir.file("src"), messages: messages.enumerated().map { ($0.element, $0.offset % 2 == 0 ? "FS" : nil) })
        let summary = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                            ledgerPath: dir.file("l.sqlite"))
        #expect(summary.delivered == 6)
        #expect(try maildirContents(dir.file("dst")) == maildirContents(dir.file("src")))
        let cur = try FileManager.default.contentsOfDirectory(atPath: dir.file("dst/cur"))
        #expect(cur.count == 3 && cur.allSatisfy { $0.hasSuffix(":2,FS") })
        // The message's date (the source file's mtime) is kept as the delivered file's mtime.
        for name in cur {
            let attrs = try FileManager.default.attributesOfItem(atPath: dir.file("dst/cur/\(name)"))
            let mtime = (attrs[.modificationDate] as! Date).timeIntervalSince1970
            #expect(name.hasPrefix("\(Int(mtime))."))
        }
    }

    @Test func deleteAfterDeliveryEmptiesTheSource() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 5)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        let s = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), disposal: .delete)
        #expect(s.delivered == 5)
        #expect(try maildirContents(dir.file("src")).isEmpty)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
        let ledger = try SQLiteLedger(path: dir.file("l.sqlite"))
        #expect(try ledger.status().first?.counts["disposed"] == 5)
    }

    @Test func deleteAfterKeepsMessagesUntilTheyAreOldEnough() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 4)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        func run(daysLater: Double = 0) async throws -> RunSummary {
            try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                  ledgerPath: dir.file("l.sqlite"), disposal: .delete, deleteAfter: .seconds(30 * 86400),
                                  clock: { Date().addingTimeInterval(daysLater * 86400) })
        }
        #expect(try await run().delivered == 4)
        #expect(try maildirContents(dir.file("src")).count == 4)  // delivered, kept for now
        #expect(try await run().delivered == 0)
        #expect(try maildirContents(dir.file("src")).count == 4)  // still too young
        #expect(try await run(daysLater: 29).delivered == 0)
        #expect(try maildirContents(dir.file("src")).count == 4)  // 29 days on: still too young
        let ledger = try SQLiteLedger(path: dir.file("l.sqlite"))
        #expect(try await run(daysLater: 31).delivered == 0)
        #expect(try maildirContents(dir.file("src")).isEmpty)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(try ledger.status().first?.counts["disposed"] == 4)
    }

    @Test func markSeenMovesSourceFilesToCurWithS() async throws {
        let dir = try TemporaryDirectory()
        try makeMaildir(dir.file("src"), messages: sampleMessages(count: 3).map { ($0, nil) })
        _ = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                  ledgerPath: dir.file("l.sqlite"), disposal: .markSeen)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("src/new")).isEmpty)
        let cur = try FileManager.default.contentsOfDirectory(atPath: dir.file("src/cur"))
        #expect(cur.count == 3 && cur.allSatisfy { $0.hasSuffix(":2,S") })
        // Delivered copies do not carry the \Seen the source got afterwards.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("dst/new")).count == 3)
    }

    @Test func dryRunChangesNothing() async throws {
        let dir = try TemporaryDirectory()
        try writeMbox(dir.file("in.mbox"), sampleMessages(count: 4))
        let s = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                      ledgerPath: dir.file("l.sqlite"), dryRun: true)
        #expect(s.listed == 4)
        #expect(s.delivered == 0)
        #expect(s.wouldDeliver == 4)
        #expect(!FileManager.default.fileExists(atPath: dir.file("out")))
        #expect(!FileManager.default.fileExists(atPath: dir.file("l.sqlite")))
    }

    @Test func aRejectedMessageIsRecordedAndTheRunGoesOn() async throws {
        let dir = try TemporaryDirectory()
        var messages = sampleMessages(count: 5)
        messages[2] = Array("Subject: POISON\n\nthis one is refused\n".utf8)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        let poison: (MailSink) -> MailSink = { sink in
            FaultySink(sink) { m, _ in
                (try? m.collect()).map { contains($0, "POISON") } == true ? DeliveryError(.permanent, "554 5.6.0 refused") : nil
            }
        }
        let s = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), disposal: .delete, sinkWrapper: poison)
        #expect(s.delivered == 4)
        #expect(s.failed == 1)
        #expect(s.deferred == 0)
        // The refused message is still at the source; the others are gone from it.
        let left = try maildirContents(dir.file("src"))
        #expect(left == [messages[2]])
        // A later run without the fault delivers it.
        let again = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                          ledgerPath: dir.file("l.sqlite"), disposal: .delete)
        #expect(again.delivered == 1)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func aMessageOverTheTargetsLimitIsSkippedWithAReason() async throws {
        let dir = try TemporaryDirectory()
        var messages = sampleMessages(count: 3)
        messages[1] = Array(("Subject: big\n\n" + String(repeating: "x", count: 5000) + "\n").utf8)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        let s = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), disposal: .delete,
                                      sinkWrapper: { LimitedSink($0, limit: 4000) })
        #expect(s.delivered == 2)
        #expect(s.skipped == 1)
        #expect(try maildirContents(dir.file("src")) == [messages[1]])  // never deleted
        let again = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                          ledgerPath: dir.file("l.sqlite"), disposal: .delete,
                                          sinkWrapper: { LimitedSink($0, limit: 4000) })
        #expect(again.delivered == 0 && again.skipped == 0)
    }

    @Test func aDyingSinkStopsTheAccountAndRecoveryFinishesTheJob() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 7)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        let dying: (MailSink) -> MailSink = { sink in
            FaultySink(sink) { _, n in n == 3 ? DeliveryError(.sinkFailed, "connection reset") : nil }
        }
        await #expect(throws: TransferStopped.self) {
            _ = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), disposal: .delete,
                                      limits: .init(maxMessages: 4), sinkWrapper: dying)
        }
        // Two delivered and deleted; the third unknown (pending); the rest untouched.
        #expect(try maildirContents(dir.file("dst")).count == 2)
        #expect(try SQLiteLedger(path: dir.file("l.sqlite")).pending(account: nil).count == 1)
        let s = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), disposal: .delete)
        #expect(s.delivered == 5)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(try maildirContents(dir.file("src")).isEmpty)
    }

    /// Each pending row's answer is committed once known: a recovery cut by a dropped link leaves
    /// the next run only what it had not looked at, so runs that each get a little way finish.
    @Test func aRecoveryCutShortKeepsWhatItLearned() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 6)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        // Crash after a batch of four was written, before its outcomes: four pending.
        await #expect(throws: CrashInjected.self) {
            _ = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"), limits: .init(maxMessages: 4),
                                      afterEffect: { if $0 == .sinkFlush { throw CrashInjected() } })
        }
        let ledger = dir.file("l.sqlite")
        var left = try SQLiteLedger(path: ledger).pending(account: nil).count
        #expect(left >= 4)  // the batch, and the next one's early intents
        while left > 1 {
            await #expect(throws: DeliveryError.self) {
                _ = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                          ledgerPath: ledger, sinkWrapper: { DroppingRecoverySink($0, dropAt: 2) })
            }
            let now = try SQLiteLedger(path: ledger).pending(account: nil).count
            #expect(now == left - 1, "a recovery cut at its second lookup kept \(left - now) answers")
            guard now == left - 1 else { break }
            left = now
        }
        _ = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))", ledgerPath: ledger)
        #expect(try SQLiteLedger(path: ledger).pending(account: nil).isEmpty)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func recoveryReplacesATruncatedFile() async throws {
        let dir = try TemporaryDirectory()
        let messages = sampleMessages(count: 2)
        try makeMaildir(dir.file("src"), messages: messages.map { ($0, nil) })
        // Crash right after the first flush would have made the file visible … then simulate the
        // power loss having truncated it: recovery must not take a partial file for a delivery.
        _ = try? await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                   ledgerPath: dir.file("l.sqlite"), afterEffect: { effect in
            if effect == .sinkFlush { throw CrashInjected() }
        })
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.file("dst/new"))
        #expect(names.count == 2)
        let victim = dir.file("dst/new/\(names[0])")
        let truncated = try Data(contentsOf: URL(fileURLWithPath: victim)).prefix(10)
        try truncated.write(to: URL(fileURLWithPath: victim))
        let s = try await runTransfer(source: "maildir:\(dir.file("src"))", target: "maildir:\(dir.file("dst"))",
                                      ledgerPath: dir.file("l.sqlite"))
        #expect(s.delivered == 1)
        #expect(try maildirContents(dir.file("dst")) == messages.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func aLargeMessageGoesThroughTheFileSpool() async throws {
        let dir = try TemporaryDirectory()
        var big = Array("Subject: big\n\n".utf8)
        var rng = SplitMix(seed: 3)
        for _ in 0..<(5 << 14) { big += Array("\(rng.next())\n".utf8).prefix(64) }
        try writeMbox(dir.file("in.mbox"), [big, Array("Subject: small\n\nx\n".utf8)])
        let s = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                      ledgerPath: dir.file("l.sqlite"))
        #expect(s.delivered == 2)
        #expect(try maildirContents(dir.file("out")).contains(big))
    }

    @Test func intoPutsEverythingInOneFolder() async throws {
        let dir = try TemporaryDirectory()
        try writeMbox(dir.file("in.mbox"), sampleMessages(count: 3))
        _ = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                  ledgerPath: dir.file("l.sqlite"), into: "Old/Orange")
        #expect(try maildirContents(dir.file("out"), folder: "Old.Orange").count == 3)
        #expect(FileManager.default.fileExists(atPath: dir.file("out/.Old.Orange/maildirfolder")))
        #expect(try maildirContents(dir.file("out")).isEmpty)
    }
}

/// mbsync's discipline: count the side effects of a scenario, then for each k stop the run right
/// after effect k (dropping every object, as a crash would), resume with fresh objects on the same
/// ledger, and check that every source message is in the target exactly once, byte for byte, and
/// that no source message was ever deleted before its delivery was committed.
struct CrashAtEveryStepTests {
    final class Counter { var n = 0 }

    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        let maildirSource: Bool
        let disposal: Disposal
        let count: Int
        let batch: Int
        let page: Int
        var testDescription: String { name }
    }

    static let scenarios = [
        Scenario(name: "Maildir → Maildir, delete after delivery", maildirSource: true, disposal: .delete, count: 8, batch: 3, page: 5),
        Scenario(name: "Maildir → Maildir, mark seen", maildirSource: true, disposal: .markSeen, count: 5, batch: 2, page: 2),
        Scenario(name: "mbox → Maildir, keep", maildirSource: false, disposal: .keep, count: 9, batch: 4, page: 4),
    ]

    @Test(arguments: scenarios)
    func everyCrashPointResumesToExactlyOnce(_ sc: Scenario) async throws {
        let messages = sampleMessages(count: sc.count, seed: 11)
        let expected = messages.sorted { $0.lexicographicallyPrecedes($1) }
        let limits = TransferStateMachine.Limits(maxMessages: sc.batch)

        func setUp(_ dir: TemporaryDirectory) throws -> String {
            if sc.maildirSource {
                try makeMaildir(dir.file("src"), messages: messages.enumerated().map { ($0.element, $0.offset == 1 ? "F" : nil) })
                return "maildir:\(dir.file("src"))"
            }
            try writeMbox(dir.file("src.mbox"), messages)
            return "mbox:\(dir.file("src.mbox"))"
        }

        /// No message has left the source unless its delivery is committed and it is in the target.
        func checkNothingLost(_ dir: TemporaryDirectory, _ source: String, k: Int) throws {
            guard sc.maildirSource, sc.disposal == .delete else { return }
            let left = try maildirContents(dir.file("src"))
            var gone = messages
            for m in left { if let i = gone.firstIndex(of: m) { gone.remove(at: i) } }
            var inTarget = try maildirContents(dir.file("dst"))
            for m in gone {
                guard let i = inTarget.firstIndex(of: m) else {
                    Issue.record("crash point \(k): a message left the source but is not in the target (gone \(gone.count), left \(left.count), target \(try maildirContents(dir.file("dst")).count))")
                    return
                }
                inTarget.remove(at: i)
            }
            if !gone.isEmpty {
                let ledger = try SQLiteLedger(path: dir.file("l.sqlite"), readOnly: true)
                let delivered = try ledger.status().first.map { ($0.counts["delivered"] ?? 0) + ($0.counts["disposed"] ?? 0) } ?? 0
                #expect(delivered >= gone.count, "crash point \(k): deleted before committed")
            }
        }

        // A clean run counts the side effects.
        let clean = try TemporaryDirectory()
        let cleanSource = try setUp(clean)
        let counter = Counter()
        _ = try await runTransfer(source: cleanSource, target: "maildir:\(clean.file("dst"))", ledgerPath: clean.file("l.sqlite"),
                                  disposal: sc.disposal, limits: limits, pageSize: sc.page, afterEffect: { _ in counter.n += 1 })
        let total = counter.n
        #expect(total >= 3 * (sc.count + sc.page - 1) / sc.page)

        for k in 1...total {
            let dir = try TemporaryDirectory()
            let source = try setUp(dir)
            let seen = Counter()
            do {
                _ = try await runTransfer(source: source, target: "maildir:\(dir.file("dst"))", ledgerPath: dir.file("l.sqlite"),
                                          disposal: sc.disposal, limits: limits, pageSize: sc.page, afterEffect: { _ in
                    seen.n += 1
                    try checkNothingLost(dir, source, k: k)
                    if seen.n == k { throw CrashInjected() }
                })
                Issue.record("crash point \(k) of \(total) was never reached")
            } catch is CrashInjected {
            }
            try checkNothingLost(dir, source, k: k)
            // Resume: new objects, same files and ledger.
            _ = try await runTransfer(source: source, target: "maildir:\(dir.file("dst"))", ledgerPath: dir.file("l.sqlite"),
                                      disposal: sc.disposal, limits: limits, pageSize: sc.page, afterEffect: { _ in try checkNothingLost(dir, source, k: k) })
            #expect(try maildirContents(dir.file("dst")) == expected, "crash point \(k) of \(total): target differs")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("dst/tmp")).isEmpty, "crash point \(k): tmp/ not clean")
            let ledger = try SQLiteLedger(path: dir.file("l.sqlite"))
            #expect(try ledger.pending(account: nil).isEmpty, "crash point \(k): pending rows left")
            let final = sc.disposal == .keep ? "delivered" : "disposed"
            #expect(try ledger.status().first?.counts[final] == sc.count, "crash point \(k): not all \(final)")
            if sc.disposal == .delete { #expect(try maildirContents(dir.file("src")).isEmpty, "crash point \(k)") }
            // And a third run changes nothing.
            let third = try await runTransfer(source: source, target: "maildir:\(dir.file("dst"))", ledgerPath: dir.file("l.sqlite"),
                                              disposal: sc.disposal, limits: limits, pageSize: sc.page)
            #expect(third.delivered == 0, "crash point \(k): a rerun delivered again")
        }
    }
}
