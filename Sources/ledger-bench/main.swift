// The ledger's write path alone, as an import uses it: per batch, one commit of the intents and,
// after delivery, one of the outcomes, each fsynced. Prints the CPU time (user + system) a message
// costs, median of several runs on a fresh ledger each.
//
//   swift run -c release ledger-bench [messages] [batch] [runs] [path]
//   (defaults: 5000 messages in batches of 85, the size of a 2 MiB batch of the benchmark's mix;
//   5 runs; a ledger in a temporary directory)
import FunnelModel
import LedgerSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

let args = CommandLine.arguments.dropFirst().map { $0 }
let messages = args.count > 0 ? Int(args[0]) ?? 5000 : 5000
let batch = args.count > 1 ? Int(args[1]) ?? 85 : 85
let runs = args.count > 2 ? Int(args[2]) ?? 5 : 5
let path = args.count > 3 ? args[3] : NSTemporaryDirectory() + "/ledger-bench-\(getpid()).sqlite"

var results: [(total: Double, intents: Double, outcomes: Double)] = []
for _ in 0..<runs {
    for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    let ledger = try SQLiteLedger(path: path)
    var intentsCPU = 0.0, outcomesCPU = 0.0
    var first = 0
    while first < messages {
        let keys = (first..<min(messages, first + batch)).map {
            SourceKey(account: "imaps://source@mail.example.org", mailbox: "INBOX", uidValidity: 1_700_000_000, ident: String($0 + 1))
        }
        let intents = keys.map { k in
            PendingIntent(key: k, sha256: String(format: "%064x", UInt64(k.ident)! &* 0x9E37_79B9_7F4A_7C15), size: 20_000,
                          messageID: "<\(k.ident).bench@example.org>", target: "maildir:/var/mail/all", targetMailbox: "INBOX",
                          watermark: TargetWatermark())
        }
        let outcomes = keys.map { DeliveryOutcome.delivered($0, targetRef: "new/1700000000.MF\($0.ident).host,S=20000") }
        let a = cpuSeconds()
        try await ledger.commitIntents(pending: intents, claims: [], outcomes: [])
        let b = cpuSeconds()
        try await ledger.record(outcomes)
        outcomesCPU += cpuSeconds() - b
        intentsCPU += b - a
        first += batch
    }
    results.append((intentsCPU + outcomesCPU, intentsCPU, outcomesCPU))
}
for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
let median = results.sorted { $0.total < $1.total }[results.count / 2]
print(String(format: "ledger writes, %d messages in batches of %d, median of %d runs: %.1f ms CPU, %.1f µs a message (intents %.1f, outcomes %.1f)",
             messages, batch, runs, median.total * 1e3, median.total / Double(messages) * 1e6,
             median.intents / Double(messages) * 1e6, median.outcomes / Double(messages) * 1e6))
