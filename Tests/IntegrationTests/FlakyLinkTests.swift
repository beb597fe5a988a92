import Foundation
import MailTransport
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
import FunnelTestSupport
@testable import LedgerSQLite
@testable import TransferEngine
import Testing

extension Dovecot {
/// MailFunnel through a link that drops every connection after a few hundred kilobytes to a few
/// megabytes, often in the middle of a batch or of a large message (and now and then garbles one,
/// or stalls it until the timeout gives it up), to the real Dovecot on both sides: rerun until a
/// run goes through, then the target must hold every source message once, byte for byte, and the
/// source none.
@Suite struct FlakyLinkTests {
    let servers: TestServers

    init() throws {
        servers = try TestServers.load()
    }

    /// Small messages and large ones (up to 1.3 MB), about 8 MB in all.
    func mailbox() -> [StoredMessage] {
        var rng = SplitMix(seed: 19)
        return imapMessages(48, tag: "flaky").enumerated().map { i, m in
            guard i % 5 == 0 else { return m }
            let lines = 6_000 + Int(rng.next() % 12_000)
            var body = m.bytes
            for l in 0..<lines { body += Array("\(l) of a large attachment in message \(i), \(rng.next())\r\n".utf8) }
            return StoredMessage(bytes: body, flags: m.flags, date: m.date)
        }
    }

    /// A stalled connection is given up after this long (`timeout`).
    static let timeout = Duration.seconds(2)

    func run(source: String, target: String, ledger: String, disposal: Disposal) async throws -> Int {
        var runs = 0
        var sourceSettings = servers.settings(for: "source"), targetSettings = servers.settings(for: "target")
        sourceSettings.timeout = Self.timeout
        targetSettings.timeout = Self.timeout
        for attempt in 1...60 {
            runs = attempt
            do {
                _ = try await runTransfer(source: source, target: target, ledgerPath: ledger, disposal: disposal,
                                          sourceSettings: sourceSettings, targetSettings: targetSettings)
                if try await servers.client("source").countAndLogout() == 0 || disposal == .keep { return runs }
            } catch {
                // What a dropped link gives: the next run goes on from here.
            }
        }
        Issue.record("not done after \(runs) runs")
        return runs
    }

    @Test(arguments: [("pop3s", Disposal.delete), ("imaps", Disposal.delete)])
    func aMoveThroughALinkThatKeepsDroppingEndsWhole(_ scheme: String, _ disposal: Disposal) async throws {
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try servers.reset("source")
        try servers.reset("target")
        let messages = mailbox()
        let src = try await servers.client("source")
        try await src.seed("INBOX", messages)
        await src.logout()
        // Many connections drop before a batch (2 MiB at most) is through: what came whole goes on.
        let faults = FaultProxy.Faults(cutAfter: (1 << 18)...(3 << 20), garbageEvery: 4, stallEvery: 5)
        let sourcePort = try servers.port(scheme == "pop3s" ? "MF_POP3S_PORT" : "MF_IMAPS_PORT")
        let toSource = try await FaultProxy.start(to: sourcePort, faults: faults, seed: 1)
        // The target's link drops sooner, mid-APPEND too: what it cut is found again by recovery.
        let toTarget = try await FaultProxy.start(to: try servers.port("MF_IMAPS_PORT"),
                                                  faults: .init(cutAfter: (1 << 18)...(4 << 20), garbageEvery: 4, stallEvery: 5), seed: 2)
        defer { toSource.stop(); toTarget.stop() }
        let runs = try await run(source: "\(scheme)://source@127.0.0.1:\(toSource.port)",
                                 target: "imaps://target@127.0.0.1:\(toTarget.port)", ledger: "\(dir)/l.sqlite", disposal: disposal)
        print("\(scheme) → imaps through a dropping link: done in \(runs) runs; connections cut: source \(toSource.counts.cuts) of \(toSource.counts.connections) (\(toSource.counts.stalls) stalled), target \(toTarget.counts.cuts) of \(toTarget.counts.connections) (\(toTarget.counts.stalls) stalled)")
        #expect(toSource.counts.cuts > 0 && toTarget.counts.cuts > 0, "a link never dropped: the test tested less than it says")
        #expect(toSource.counts.stalls + toTarget.counts.stalls > 0, "no connection stalled: the test tested less than it says")
        let dst = try await servers.client("target")
        let stored = try await dst.contents(of: "INBOX")
        await dst.logout()
        #expect(digests(stored.map(\.bytes)) == digests(messages.map(\.bytes)), "the target holds \(stored.count) of \(messages.count)")
        #expect(try await servers.client("source").countAndLogout() == 0)
        #expect(try SQLiteLedger(path: "\(dir)/l.sqlite").pending(account: nil).isEmpty)
    }
}
}

extension IMAPClient {
    /// How many messages INBOX holds; logs out.
    func countAndLogout() async throws -> Int {
        let s = try await select("INBOX", readOnly: true)
        await logout()
        return Int(s.exists)
    }
}
