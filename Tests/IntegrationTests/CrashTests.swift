import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import IMAPCore
import MailTransport
import Testing

struct Crash: Error {}

final class Counter { var n = 0 }

/// mbsync's discipline against real servers: stop after every side effect in turn, resume, and
/// check that the target holds every message exactly once and the source lost nothing. Each case
/// runs twice: in this process (the hook throws and the run unwinds) and as the real binary ended
/// with `_exit` right after the side effect (nothing unwinds; tasks in flight die with it).
extension Dovecot {
@Suite struct CrashTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
    }

    func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }
    func pop3s(_ user: String) throws -> String { "pop3s://\(user)@127.0.0.1:\(try servers.port("MF_POP3S_PORT"))" }

    /// The command line of a test import: the test CA, password files, batches of two messages.
    func importArguments(_ source: String, _ target: String, ledger: String, dir: String, extra: [String] = []) throws -> [String] {
        var args = ["import", source, target, "--ledger", ledger, "--ca-file", servers.caFile, "--batch-messages", "2",
                    "--target-password-file", try servers.passwordFile("target", in: dir)]
        if !source.hasPrefix("mbox:") { args += ["--source-password-file", try servers.passwordFile("source", in: dir)] }
        return args + extra
    }

    /// Seven messages, two of them identical twins (both must arrive), in an mbox file.
    func mboxFixture(_ dir: String) -> [[UInt8]] {
        var messages = imapMessages(7, tag: "crash").map { m in m.bytes.filter { $0 != 0x0D } }  // LF, as mbox files are
        messages[5] = messages[1]
        var mbox: [UInt8] = []
        for m in messages { mbox += Array("From a@b Sat Jan  3 01:05:34 2004\n".utf8) + m + [0x0A] }
        FileManager.default.createFile(atPath: "\(dir)/in.mbox", contents: Data(mbox))
        return messages.map(crlf)
    }

    func assertMboxToIMAPSurvivesEveryCrash(_ run: (_ dir: String) throws -> CrashableRun) async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let expected = mboxFixture(dir)
        try await assertSurvivesEveryCrash(minimumEffects: 12, workDir: dir, reset: { try servers.reset("target") },
                                           resumed: { point in
            let dst = try await servers.client("target")
            let stored = try await dst.contents(of: "INBOX").map(\.bytes)
            await dst.logout()
            // Compared by digest, so a failure prints something a person can read.
            #expect(digests(stored) == digests(expected), "\(point): the target holds \(stored.count) messages, expected \(expected.count)")
        }, run: try run(dir))
    }

    @Test func mboxToIMAPRecoversAtEveryStep() async throws {
        try await assertMboxToIMAPSurvivesEveryCrash { dir in
            inProcess { ledger, hook in
                _ = try await runTransfer(source: "mbox:\(dir)/in.mbox", target: try imaps("target"), ledgerPath: ledger,
                                          limits: .init(maxMessages: 2), targetSettings: servers.settings(for: "target"), afterEffect: hook)
            }
        }
    }

    @Test func mboxToIMAPProcessRecoversAtEveryStep() async throws {
        try await assertMboxToIMAPSurvivesEveryCrash { dir in
            asProcess { ledger in try importArguments("mbox:\(dir)/in.mbox", try imaps("target"), ledger: ledger, dir: dir) }
        }
    }

    /// Messages a rule sends to another folder, batched with the rest: one APPEND a folder, and
    /// recovery looks for each in the folder its intent names.
    @Test func mboxToIMAPIntoFoldersARuleChoosesRecoversAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = mboxFixture(dir)
        let odd = messages.filter { OddIntoListsRule.number($0).map { $0 % 2 == 1 } ?? false }
        let even = messages.filter { !odd.contains($0) }
        #expect(!odd.isEmpty && !even.isEmpty)
        try await assertSurvivesEveryCrash(minimumEffects: 12, workDir: dir, reset: { try servers.reset("target") }, resumed: { point in
            let dst = try await servers.client("target")
            let inbox = try await dst.contents(of: "INBOX")
            let lists = (try? await dst.contents(of: "Lists/Odd")) ?? []
            await dst.logout()
            #expect(digests(inbox.map(\.bytes)) == digests(even), "\(point): INBOX holds \(inbox.count), expected \(even.count)")
            #expect(digests(lists.map(\.bytes)) == digests(odd), "\(point): Lists/Odd holds \(lists.count), expected \(odd.count)")
            #expect(lists.allSatisfy { $0.flags.contains("\\Flagged") }, "\(point): the rule's flag is missing")
        }, run: inProcess { ledger, hook in
            _ = try await runTransfer(source: "mbox:\(dir)/in.mbox", target: try imaps("target"), ledgerPath: ledger,
                                      limits: .init(maxMessages: 3), targetSettings: servers.settings(for: "target"), rules: [OddIntoListsRule()],
                                      afterEffect: hook)
        })
    }

    @Test func imapToIMAPWithDeleteLosesNothingAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await servers.assertMoveSurvivesEveryCrash(imapMessages(5, tag: "move"), minimumEffects: 10, keepsFlags: true, workDir: dir,
                                                       run: inProcess { ledger, hook in
            _ = try await runTransfer(source: try imaps("source"), target: try imaps("target"), ledgerPath: ledger, disposal: .delete,
                                      limits: .init(maxMessages: 2), sourceSettings: servers.settings(for: "source"),
                                      targetSettings: servers.settings(for: "target"), afterEffect: hook)
        })
    }

    @Test func imapToIMAPWithDeleteProcessLosesNothingAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await servers.assertMoveSurvivesEveryCrash(imapMessages(5, tag: "pmove"), minimumEffects: 10, keepsFlags: true, workDir: dir,
                                                       run: asProcess { ledger in
            try importArguments(try imaps("source"), try imaps("target"), ledger: ledger, dir: dir, extra: ["--after-delivery", "delete"])
        })
    }

    /// Including between the DELEs and the QUIT that carries them out.
    @Test func pop3ToIMAPWithDeleteProcessLosesNothingAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await servers.assertMoveSurvivesEveryCrash(imapMessages(5, tag: "ppop"), minimumEffects: 12, keepsFlags: false, workDir: dir,
                                                       run: asProcess { ledger in
            try importArguments(try pop3s("source"), try imaps("target"), ledger: ledger, dir: dir, extra: ["--after-delivery", "delete"])
        })
    }
}
}

/// Sends the messages whose subject ends in an odd number to `Lists/Odd`, flagged.
struct OddIntoListsRule: DeliveryRule {
    var choosesFolders: Bool { true }

    static func number(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("Subject: ") }) else { return nil }
        return line.split(separator: " ").compactMap { Int($0) }.first
    }

    func decide(_ message: SpooledMessage, _ context: DecisionContext, proposed: Delivery) async throws -> RuleVerdict {
        guard let subject = message.headers.value(of: "Subject"),
              let n = subject.split(separator: " ").compactMap({ Int($0) }).first, n % 2 == 1 else { return .deliver(proposed) }
        var flags = message.flags
        flags.flagged = true
        return .deliver(Delivery(mailbox: "Lists/Odd", flags: flags))
    }
}
