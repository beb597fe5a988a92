import Foundation

/// Group commit: work runs one group at a time on a thread of its own, and what is submitted while
/// a group runs makes the next group, done together (`together`: one transaction, one fsync; or
/// one pair of file-system syncs). When the disk keeps up, a group is one piece of work; when it
/// falls behind, groups grow and cost fewer syncs each.
///
/// The thread is a dispatch queue's, not a task's: work that blocks in the kernel (fsync, syncfs)
/// would hold one of the few threads Swift's tasks share (one a core), and leave none for the
/// fetch the runner waits for.
package final class GroupQueue<Item: Sendable>: @unchecked Sendable {
    // Its result is written and read under the queue's lock.
    private final class Ticket: @unchecked Sendable {
        let item: Item
        var result: Result<Void, Error>?
        init(_ item: Item) { self.item = item }
    }

    private let lock = NSLock()
    private var queued: [Ticket] = []
    private let queue: DispatchQueue

    package init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// How many submissions wait for a group to take them.
    package var waiting: Int { lock.withLock { queued.count } }

    /// Runs `item` with those queued beside it; `together` gets the group in the order submitted
    /// and returns each one's result (a failure of one is not every one's unless it must be).
    package func submit(_ item: Item, together: @escaping @Sendable ([Item]) -> [Result<Void, Error>]) async throws {
        let ticket = Ticket(item)
        lock.withLock { queued.append(ticket) }
        // One job per submission, in order: the first to run takes everything queued by then; the
        // jobs of the others find their result in.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            queue.async { [self] in
                let group: [Ticket] = lock.withLock {
                    guard ticket.result == nil else { return [] }
                    defer { queued.removeAll() }
                    return queued
                }
                if !group.isEmpty {
                    let results = together(group.map(\.item))
                    lock.withLock { for (t, r) in zip(group, results) { t.result = r } }
                }
                continuation.resume(with: lock.withLock { ticket.result! })
            }
        }
    }
}

extension Settlement {
    /// Every transfer's settlements, so that batches settled at once share their syncs.
    package static let queue = GroupQueue<Settlement>(label: "mailfunnel.settle")

    /// Runs in the settlement queue, with those submitted beside it.
    package func runQueued() async throws {
        try await Self.queue.submit(self) { Settlement.runTogether($0) }
    }
}
