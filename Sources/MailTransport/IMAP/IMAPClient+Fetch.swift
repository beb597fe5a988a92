import Foundation
import IMAPCore
import NIOCore

/// UID FETCH: responses read on the connection's event loop, and fetches sent ahead or read a
/// part at a time.
extension IMAPClient {
    /// Like `collect`, but the response is read and parsed on the connection's event loop, where
    /// its bytes are decrypted, and `onFetch` is called there: for FETCH responses carrying message
    /// bodies, which then go from the socket into their spools on one thread, without a trip to a
    /// task for every read.
    private func collectOnLoop(tag: String, name: String, mailbox: String?,
                               onFetch: @escaping (IMAPResponseEvent) throws -> Void,
                               whenDone: @escaping () -> Void = {}) async throws -> TaggedResponse {
        guard case let .ended(t) = try await collectOnLoop(tag: tag, name: name, mailbox: mailbox, onFetch: onFetch,
                                                            pauseAfterMessage: nil, whenDone: whenDone) else {
            preconditionFailure("a read without a pause paused")
        }
        return t
    }

    /// How a read of a response stopped: at its tagged response, or paused between two messages.
    private enum Collected {
        case ended(TaggedResponse)
        case paused
    }

    /// As above; with `pauseAfterMessage`, the read also stops after a FETCH response (a message)
    /// when it returns true, leaving the rest of the command's response to a later call.
    private func collectOnLoop(tag: String, name: String, mailbox: String?,
                               onFetch: @escaping (IMAPResponseEvent) throws -> Void,
                               pauseAfterMessage: (() -> Bool)?,
                               whenDone: @escaping () -> Void = {}) async throws -> Collected {
        // Every event buffered so far: the tagged response that ends the command, a pause, or nil.
        func step() throws -> Collected? {
            while let event = try parseBuffered() {
                if let t = try handle(event, tag: tag, name: name, mailbox: mailbox, onUntagged: { _ in }, onFetch: onFetch) {
                    whenDone()
                    return .ended(t)
                }
                if case .fetchEnded = event, let pause = pauseAfterMessage, pause() { return .paused }
            }
            return nil
        }
        // What the parser already holds comes first.
        if let c = try step() { return c }
        var done: Collected?
        try await connection.consumeReads { more in
            self.traceRead(more)
            self.buffer.absorb(&more)
            done = try step()
            if done == nil { self.buffer.releaseIfParsed() }
            return done != nil
        }
        return done!
    }

    /// `UID FETCH set (items)`, each event handed to `onEvent` as it arrives (bodies in pieces).
    /// `onEvent` is called on the connection's event loop (see `collectOnLoop`).
    ///
    /// When `then` names a further UID set at the moment this command's tagged OK arrives, the
    /// UID FETCH for it is written right then, from the event loop, so the server goes on with it
    /// without waiting for this call to return and the next to be made; its response is read by
    /// `uidFetch(continuing:)`, and nothing else may be sent before that. Sent only once this
    /// command has ended, it never runs beside it: servers that run pipelined FETCH commands
    /// in parallel (Dovecot does) would interleave their responses.
    @discardableResult
    public func uidFetch(_ set: UIDSet, items: [String], then next: (@Sendable () -> UIDSet?)? = nil,
                         onEvent: @escaping (IMAPResponseEvent) throws -> Void) async throws -> SentFetch? {
        let tag = nextTag()
        let command = IMAPCommand.uidFetch(set, items: items)
        try await send(encoder.encode(tag: tag, command), tag: tag, sensitive: false)
        return try await collectFetch(tag: tag, items: items, then: next, onEvent: onEvent)
    }

    /// Reads the response of a UID FETCH that an earlier call sent ahead (see `then` above).
    @discardableResult
    public func uidFetch(continuing sent: SentFetch, then next: (@Sendable () -> UIDSet?)? = nil,
                         onEvent: @escaping (IMAPResponseEvent) throws -> Void) async throws -> SentFetch? {
        try await collectFetch(tag: sent.tag, items: sent.items, then: next, onEvent: onEvent)
    }

    private func collectFetch(tag: String, items: [String], then next: (@Sendable () -> UIDSet?)?,
                              onEvent: @escaping (IMAPResponseEvent) throws -> Void) async throws -> SentFetch? {
        var sent: SentFetch?
        _ = try await collectOnLoop(tag: tag, name: "UID FETCH", mailbox: selected?.name, onFetch: onEvent) {
            guard let set = next?(), !set.ranges.isEmpty else { return }
            let t = self.nextTag()
            var out = ByteBuffer()
            for case let .bytes(b) in self.encoder.encode(tag: t, .uidFetch(set, items: items)) { out.writeBytes(b) }
            if self.trace.isEnabled {
                self.trace.client(String(decoding: out.readableBytesView, as: UTF8.self).trimmingCharacters(in: .newlines) + " (sent ahead)")
            }
            self.connection.writeNow(out)
            sent = SentFetch(tag: t, set: set, items: items)
        }
        return sent
    }

    /// Writes `UID FETCH set (items)` and returns at once: its response is read by `readFetch`,
    /// a part at a time, and no other command may be sent until it has ended. For a fetch of many
    /// batches in one command, so the server streams them without a pause between batches.
    public func startFetch(_ set: UIDSet, items: [String]) async throws -> OpenFetch {
        let tag = nextTag()
        try await send(encoder.encode(tag: tag, .uidFetch(set, items: items)), tag: tag, sensitive: false)
        return OpenFetch(tag: tag, set: set)
    }

    /// Reads `fetch`'s response, each event handed to `onEvent` on the connection's event loop,
    /// until `pauseAfterMessage`, asked after each message, returns true (returns false: the
    /// rest is still to be read) or the command ends (returns true).
    public func readFetch(_ fetch: OpenFetch, pauseAfterMessage: @escaping () -> Bool,
                          onEvent: @escaping (IMAPResponseEvent) throws -> Void) async throws -> Bool {
        switch try await collectOnLoop(tag: fetch.tag, name: "UID FETCH", mailbox: selected?.name, onFetch: onEvent,
                                       pauseAfterMessage: pauseAfterMessage) {
        case .ended: return true
        case .paused: return false
        }
    }
}

/// A UID FETCH whose response is read a part at a time (`IMAPClient.startFetch`, `readFetch`).
public struct OpenFetch: Sendable, Equatable {
    public let tag: String
    public let set: UIDSet
}

/// A UID FETCH written ahead of its turn (`IMAPClient.uidFetch(_:items:then:onEvent:)`), whose
/// response is still to be read.
public struct SentFetch: Sendable, Equatable {
    public let tag: String
    public let set: UIDSet
    let items: [String]
}
