import FunnelModel
import Synchronization

/// What the page's runner started in the background reports back, in the order it finished; the
/// runner hands each to its state machine.
final class PageEvents: Sendable {
    enum Event: Sendable {
        case fetched(batch: Int, Result<Handoff<[FetchResult]>, Error>)
        case intents(batch: Int, Result<Handoff<EarlyIntents>, Error>)
        case outcomes(batch: Int, Result<Void, Error>)
    }

    private struct State {
        var queued: [Event] = []
        var waiter: CheckedContinuation<Event, Never>?
    }

    private let state = Mutex(State())

    func post(_ event: Event) {
        let waiter: CheckedContinuation<Event, Never>? = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.queued.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// The oldest event in already, without waiting: one at a time, so that one whose handling
    /// throws leaves the rest queued for the runner's stop.
    func poll() -> Event? {
        state.withLock { s in s.queued.isEmpty ? nil : s.queued.removeFirst() }
    }

    /// The next event, waiting for it if none is in.
    func next() async -> Event {
        await withCheckedContinuation { (c: CheckedContinuation<Event, Never>) in
            let ready: Event? = state.withLock { s in
                if !s.queued.isEmpty { return s.queued.removeFirst() }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// A batch whose intents were committed early: its fetch results and the decisions committed.
struct EarlyIntents {
    var results: [FetchResult]
    var preparations: [TransferStateMachine.Preparation]
}

/// The batches a page has started fetching, in order, so that the source, as one batch's
/// response ends, can ask for the next (`MailSource.fetch(_:mailbox:upcoming:makeSpool:)`).
/// Read from the source connection's event loop, hence the lock.
final class FetchPlan: Sendable {
    private let batches = Mutex<[(range: Range<Int>, messages: [ListedMessage])]>([])

    func add(_ range: Range<Int>, _ messages: [ListedMessage]) {
        batches.withLock { $0.append((range, messages)) }
    }

    /// The batch started after `range`, if one is; the ones before `range` are done with.
    func after(_ range: Range<Int>) -> [ListedMessage]? {
        batches.withLock { batches in
            guard let i = batches.firstIndex(where: { $0.range == range }) else { return nil }
            batches.removeFirst(i)
            return batches.count > 1 ? batches[1].messages : nil
        }
    }
}
