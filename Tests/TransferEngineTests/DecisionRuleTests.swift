import Foundation
import FunnelModel
import FunnelTestSupport
import LedgerSQLite
import MailMessage
import Testing
@testable import TransferEngine

/// A filter as a Sieve script would be one: the odd-numbered test messages go to `Lists/Odd`,
/// flagged; "test 5" is refused; the rest are left as they were.
struct OddToListsRule: DeliveryRule {
    var choosesFolders: Bool { true }

    func decide(_ message: SpooledMessage, _ context: DecisionContext, proposed: Delivery) async throws -> RuleVerdict {
        guard let subject = message.headers.value(of: "Subject"), let n = subject.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return .deliver(proposed) }
        if n == 5 { return .skip(reason: "the rule refuses test 5") }
        guard n % 2 == 1 else { return .deliver(proposed) }
        var flags = message.flags
        flags.flagged = true
        return .deliver(Delivery(mailbox: "Lists/Odd", flags: flags))
    }
}

func subjectNumber(_ message: [UInt8]) -> Int {
    let text = String(decoding: message, as: UTF8.self)
    let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Subject: test ") }!
    return Int(line.split(separator: " ")[2])!
}

struct DecisionRuleTests {
    static let messages = sampleMessages(count: 9, seed: 5)
    static let odd = messages.filter { subjectNumber($0) % 2 == 1 && subjectNumber($0) != 5 }.sorted { $0.lexicographicallyPrecedes($1) }
    static let rest = messages.filter { subjectNumber($0) % 2 == 0 }.sorted { $0.lexicographicallyPrecedes($1) }

    @Test func aRuleChoosesTheFolderAndFlagsAndMaySkip() async throws {
        let dir = try TemporaryDirectory()
        try writeMbox(dir.file("in.mbox"), Self.messages)
        let s = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                      ledgerPath: dir.file("l.sqlite"), limits: .init(maxMessages: 3), rules: [OddToListsRule()])
        #expect(s.delivered == 8 && s.skipped == 1)
        #expect(try maildirContents(dir.file("out"), folder: "Lists.Odd") == Self.odd)
        #expect(try maildirContents(dir.file("out")) == Self.rest)
        let flagged = try FileManager.default.contentsOfDirectory(atPath: dir.file("out/.Lists.Odd/cur"))
        #expect(flagged.count == Self.odd.count && flagged.allSatisfy { $0.hasSuffix(":2,F") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("out/cur")).isEmpty)
        let ledger = try SQLiteLedger(path: dir.file("l.sqlite"))
        #expect(try ledger.status().first?.counts["skipped"] == 1)
        let again = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                          ledgerPath: dir.file("l.sqlite"), limits: .init(maxMessages: 3), rules: [OddToListsRule()])
        #expect(again.delivered == 0 && again.skipped == 0)
    }

    /// The folder decided is the one the intent records (recovery looks for the message there), and
    /// a crash after any side effect, then a resumed run, leaves each message once in its folder.
    @Test func recoveryLooksInTheFolderTheRuleChose() async throws {
        let limits = TransferStateMachine.Limits(maxMessages: 3)
        final class Counter { var n = 0 }
        let clean = try TemporaryDirectory()
        try writeMbox(clean.file("in.mbox"), Self.messages)
        let counter = Counter()
        _ = try await runTransfer(source: "mbox:\(clean.file("in.mbox"))", target: "maildir:\(clean.file("out"))",
                                  ledgerPath: clean.file("l.sqlite"), limits: limits, rules: [OddToListsRule()],
                                  afterEffect: { _ in counter.n += 1 })
        #expect(counter.n >= 9)
        for k in 1...counter.n {
            let dir = try TemporaryDirectory()
            try writeMbox(dir.file("in.mbox"), Self.messages)
            let seen = Counter()
            do {
                _ = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                          ledgerPath: dir.file("l.sqlite"), limits: limits, rules: [OddToListsRule()],
                                          afterEffect: { _ in seen.n += 1; if seen.n == k { throw CrashInjected() } })
                Issue.record("crash point \(k) was never reached")
            } catch is CrashInjected {}
            for record in try SQLiteLedger(path: dir.file("l.sqlite")).pending(account: nil) {
                // The Message-ID's number is the subject's (<m3@test> is a twin of test 1).
                guard let id = record.messageID, let n = Int(id.dropFirst(2).prefix { $0.isNumber }) else { continue }
                #expect((record.targetMailbox == "Lists/Odd") == (n % 2 == 1), "crash point \(k): \(id) intended for \(record.targetMailbox)")
            }
            _ = try await runTransfer(source: "mbox:\(dir.file("in.mbox"))", target: "maildir:\(dir.file("out"))",
                                      ledgerPath: dir.file("l.sqlite"), limits: limits, rules: [OddToListsRule()])
            #expect(try maildirContents(dir.file("out"), folder: "Lists.Odd") == Self.odd, "crash point \(k)")
            #expect(try maildirContents(dir.file("out")) == Self.rest, "crash point \(k)")
            #expect(try SQLiteLedger(path: dir.file("l.sqlite")).pending(account: nil).isEmpty, "crash point \(k)")
        }
    }
}
