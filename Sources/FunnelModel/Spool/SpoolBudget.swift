import Synchronization

/// How many bytes the spools of one transfer may hold in memory together (messages fetched ahead
/// and being delivered); beyond it they spool to their temporary files. Keeps peak memory flat
/// whatever the batch sizes and the number of batches fetched ahead.
public final class SpoolBudget: Sendable {
    public let limit: Int
    private let used = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes held now.
    public var inUse: Int { used.load(ordering: .relaxed) }

    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }

    /// A spool's share; given back when the spool or the message it became goes away.
    final class Lease {
        let budget: SpoolBudget
        var bytes: Int {
            didSet { precondition(bytes >= oldValue, "a lease only grows") }
        }

        init(_ budget: SpoolBudget, bytes: Int) {
            self.budget = budget
            self.bytes = bytes
        }

        deinit { budget.give(bytes) }
    }
}
