import Foundation
@testable import FunnelModel
import FunnelTestSupport
import Synchronization
import Testing

/// Group commit: what queues while a group runs is done together, and one member's failure stays
/// its own.
struct GroupCommitTests {
    struct Refused: Error {}

    @Test func whatIsSubmittedWhileAGroupRunsMakesTheNextGroup() async throws {
        let queue = GroupQueue<Int>(label: "test")
        let groups = Mutex<[[Int]]>([])
        let gate = DispatchSemaphore(value: 0)
        let together: @Sendable ([Int]) -> [Result<Void, Error>] = { items in
            groups.withLock { $0.append(items) }
            if items == [0] { gate.wait() }
            return items.map { $0 == 2 ? .failure(Refused()) : .success(()) }
        }
        let first = Task { try await queue.submit(0, together: together) }
        try await waitUntil { !groups.withLock { $0.isEmpty } }
        let others = (1...3).map { i in Task { try await queue.submit(i, together: together) } }
        try await waitUntil { queue.waiting == 3 }
        gate.signal()
        try await first.value
        try await others[0].value
        await #expect(throws: Refused.self) { try await others[1].value }
        try await others[2].value
        #expect(groups.withLock { $0.map { $0.sorted() } } == [[0], [1, 2, 3]])
    }

    @Test func settlementsOfOneScopeShareTheirSyncsAndKeepTheirOwnFailures() {
        let log = Mutex<[String]>([])
        @Sendable func note(_ s: String) { log.withLock { $0.append(s) } }
        func settlement(_ name: String, scope: String, moveFails: Bool = false, syncFails: Bool = false) -> Settlement {
            Settlement(scope: scope, sync: {
                note("sync \(scope)")
                if syncFails { throw Refused() }
            }, move: {
                note("move \(name)")
                if moveFails { throw Refused() }
            })
        }
        let results = Settlement.runTogether([
            settlement("a", scope: "x"), settlement("b", scope: "x", moveFails: true), Settlement { note("whole") },
            settlement("c", scope: "y"), settlement("d", scope: "z", syncFails: true),
        ])
        #expect(log.withLock { $0 } == ["whole", "sync x", "move a", "move b", "sync x", "sync y", "move c", "sync y",
                                        "sync z"])
        #expect(results.map { (try? $0.get()) != nil } == [true, false, true, true, false])
    }
}
