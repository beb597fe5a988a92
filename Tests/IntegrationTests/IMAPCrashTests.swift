import Crypto
import Foundation
@testable import Funnel
import IMAPCore
import MailTransport
import Testing

struct Crash: Error {}


final class Counter { var n = 0 }

/// mbsync's discipline against a real IMAP server: stop after every side effect in turn, resume,
/// and check that the target holds every message exactly once and the source lost nothing.
extension Dovecot {
@Suite struct IMAPCrashTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
    }

    func settings(_ user: String) -> EndpointSettings {
        var s = EndpointSettings(passwordVariable: "UNUSED")
        s.secret = Config.Secret(inline: servers.password(user))
        s.caFile = servers.caFile
        return s
    }

    func imaps(_ user: String) throws -> String { "imaps://\(user)@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))" }

    @Test func mboxToIMAPRecoversAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var messages = imapMessages(7, tag: "crash").map { m in m.bytes.filter { $0 != 0x0D } }  // LF, as mbox files are
        messages[5] = messages[1]  // identical twins: both must arrive
        var mbox: [UInt8] = []
        for m in messages { mbox += Array("From a@b Sat Jan  3 01:05:34 2004\n".utf8) + m + [0x0A] }
        FileManager.default.createFile(atPath: "\(dir)/in.mbox", contents: Data(mbox))
        let expected = messages.map(crlf).sorted { $0.lexicographicallyPrecedes($1) }
        let limits = TransferStateMachine.Limits(maxMessages: 2)

        func run(_ ledger: String, _ hook: @escaping (SideEffect) throws -> Void) async throws {
            _ = try await runTransfer(source: "mbox:\(dir)/in.mbox", target: try imaps("target"), ledgerPath: ledger,
                                      limits: limits, targetSettings: settings("target"), afterEffect: hook)
        }
        try servers.reset("target")
        let counter = Counter()
        try await run("\(dir)/count.sqlite") { _ in counter.n += 1 }
        let total = counter.n
        #expect(total >= 12)

        for k in 1...total {
            try servers.reset("target")
            let ledger = "\(dir)/l\(k).sqlite"
            let seen = Counter()
            do {
                try await run(ledger) { _ in
                    seen.n += 1
                    if seen.n == k { throw Crash() }
                }
            } catch is Crash {}
            try await run(ledger) { _ in }
            let dst = try await servers.client("target")
            let stored = try await dst.contents(of: "INBOX").map(\.bytes)
            await dst.logout()
            // Compared by digest, so a failure prints something a person can read.
            #expect(digests(stored) == digests(expected), "crash point \(k) of \(total): the target holds \(stored.count) messages, expected \(expected.count)")
            #expect(try Ledger(path: ledger).pending(account: nil).isEmpty, "crash point \(k): pending rows left")
        }
    }

    @Test func imapToIMAPWithDeleteLosesNothingAtEveryStep() async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await servers.assertMoveSurvivesEveryCrash(imapMessages(5, tag: "move"), minimumEffects: 10, keepsFlags: true, workDir: dir) { ledger, hook in
            _ = try await runTransfer(source: try imaps("source"), target: try imaps("target"), ledgerPath: ledger, disposal: .delete,
                                      limits: .init(maxMessages: 2), sourceSettings: settings("source"),
                                      targetSettings: settings("target"), afterEffect: hook)
        }
    }
}
}
