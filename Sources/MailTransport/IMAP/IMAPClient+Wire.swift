import Foundation
import IMAPCore
import Logging
import NIOCore

/// The command and response loop: tags, writes, and the events read back for each command.
extension IMAPClient {
    /// Runs a command and returns its tagged OK; untagged data goes to `onUntagged`, FETCH events
    /// to `onFetch`. NO and BAD become `IMAPError.commandFailed`.
    @discardableResult
    public func run(_ command: IMAPCommand, mailbox: String? = nil,
                    onUntagged: (UntaggedResponse) throws -> Void = { _ in },
                    onFetch: (IMAPResponseEvent) throws -> Void = { _ in }) async throws -> TaggedResponse {
        let tag = nextTag()
        try await send(encoder.encode(tag: tag, command), tag: tag, sensitive: command.isSensitive)
        return try await collect(tag: tag, name: Self.name(of: command), mailbox: mailbox, onUntagged: onUntagged, onFetch: onFetch)
    }

    func collect(tag: String, name: String, mailbox: String?,
                 onUntagged: (UntaggedResponse) throws -> Void,
                 onFetch: (IMAPResponseEvent) throws -> Void) async throws -> TaggedResponse {
        while true {
            let event = try await nextEvent()
            if let done = try handle(event, tag: tag, name: name, mailbox: mailbox, onUntagged: onUntagged, onFetch: onFetch) {
                return done
            }
        }
    }

    /// One event of a command's response: the tagged response that ends it, or nil to read on.
    func handle(_ event: IMAPResponseEvent, tag: String, name: String, mailbox: String?,
                onUntagged: (UntaggedResponse) throws -> Void,
                onFetch: (IMAPResponseEvent) throws -> Void) throws -> TaggedResponse? {
        switch event {
        case let .tagged(t) where t.tag == tag:
            if case let .capability(caps)? = t.code { setCapabilities(caps) }
            guard t.status == .ok else {
                throw IMAPError.commandFailed(server: endpoint.description, command: name, status: t.status, code: t.code,
                                              text: t.text, mailbox: mailbox)
            }
            return t
        case .tagged(let t):
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "a response for tag \(t.tag) while waiting for \(tag)")
        case .fetchBegan, .fetchAttribute, .fetchBodyBegan, .fetchBodyBytes, .fetchBodyEnded, .fetchBodyNil, .fetchEnded:
            try onFetch(event)
        case let .unreadable(u):
            try passOver(u, during: name)
        case let .untagged(u):
            try noteUntagged(u)
            try onUntagged(u)
        case .continuation:
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "an unexpected continuation during \(name)")
        }
        return nil
    }

    func noteUntagged(_ u: UntaggedResponse) throws {
        switch u {
        case let .capability(caps): setCapabilities(caps)
        case let .exists(n): lastExists = n; selected?.exists = n
        default: break
        }
    }

    func handleUnsolicited(_ event: IMAPResponseEvent) throws {
        switch event {
        case let .untagged(u): try noteUntagged(u)
        case let .unreadable(u): try passOver(u, during: nil)
        default: break
        }
    }

    /// An untagged response the parser could not read: logged and passed over, as a fetcher needs
    /// nothing it cannot read there, unless it is what the command asked for. A FETCH during UID
    /// FETCH may be a message we wanted, a LIST a folder, a SEARCH the UIDs a deletion is judged
    /// by, an EXISTS whether a mailbox has mail: passing over one could lose or hide mail, so that
    /// is an error, and the connection, out of step with the command, is closed.
    func passOver(_ u: UnreadableResponse, during command: String?) throws {
        if let name = u.name, let command, Self.answers(to: command).contains(name) {
            connection.closeNow()
            throw IMAPError.protocolViolation(server: endpoint.description,
                                              detail: "an unreadable \(name) response to \(command) (\(u.problem)): \(u.text)")
        }
        trace.logger.warning("\(endpoint.description): passing over a response it cannot read (\(u.problem)): \(u.text)")
    }

    /// The untagged responses that carry what a command asks for.
    static func answers(to command: String) -> Set<String> {
        switch command {
        case "UID FETCH": return ["FETCH"]
        case "LIST": return ["LIST"]
        case "UID SEARCH": return ["SEARCH", "ESEARCH"]
        case "STATUS": return ["STATUS"]
        case "SELECT", "EXAMINE": return ["EXISTS"]
        default: return []
        }
    }

    static func name(of command: IMAPCommand) -> String {
        switch command {
        case .capability: return "CAPABILITY"
        case .noop: return "NOOP"
        case .logout: return "LOGOUT"
        case .startTLS: return "STARTTLS"
        case .login: return "LOGIN"
        case let .authenticate(m, _): return "AUTHENTICATE \(m)"
        case .id: return "ID"
        case .enable: return "ENABLE"
        case .list: return "LIST"
        case let .create(m): return "CREATE \(m)"
        case .select: return "SELECT"
        case .examine: return "EXAMINE"
        case .status: return "STATUS"
        case .uidSearch: return "UID SEARCH"
        case .uidFetch: return "UID FETCH"
        case .uidStore: return "UID STORE"
        case .uidExpunge: return "UID EXPUNGE"
        case .expunge: return "EXPUNGE"
        case .idle: return "IDLE"
        case .unselect: return "UNSELECT"
        case .close: return "CLOSE"
        }
    }

    func nextTag() -> String {
        tagNumber += 1
        return "a\(tagNumber)"
    }

    func send(_ chunks: [CommandChunk], tag: String, sensitive: Bool) async throws {
        for chunk in chunks {
            switch chunk {
            case let .bytes(bytes):
                if trace.isEnabled {
                    let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
                    trace.client(sensitive ? ProtocolTrace.redact(line) : line)
                }
                try await connection.write(bytes)
            case .waitForContinuation:
                while true {
                    let event = try await nextEvent()
                    if case .continuation = event { break }
                    if case let .tagged(t) = event, t.tag == tag {
                        throw IMAPError.commandFailed(server: endpoint.description, command: "literal", status: t.status,
                                                      code: t.code, text: t.text, mailbox: selected?.name)
                    }
                    try handleUnsolicited(event)
                }
            }
        }
    }

    /// The next event, or nil when nothing came within `limit` (the connection stays open).
    func nextEvent(waitingAtMost limit: Duration) async throws -> IMAPResponseEvent? {
        let deadline = ContinuousClock.now + limit
        while true {
            // The parser may hold events of a line already read (one FETCH line is several).
            if let event = try parseBuffered() { return event }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            buffer.releaseIfParsed()
            guard var more = try await connection.read(waitingAtMost: left) else {
                throw TransportError.closedByPeer(endpoint: endpoint.description)
            }
            if more.readableBytes == 0 { return nil }
            traceRead(more)
            buffer.absorb(&more)
        }
    }

    /// The next event of what is buffered, or nil. A reply that breaks the protocol closes the
    /// connection: nothing after it can be trusted to be framed right.
    func parseBuffered() throws -> IMAPResponseEvent? {
        do {
            guard let event = try parser.next(&buffer) else { return nil }
            return event
        } catch let error as IMAPParseError {
            connection.closeNow()
            throw IMAPError.protocolViolation(server: endpoint.description, detail: error.description)
        }
    }

    /// The next response event, reading from the network as needed.
    func nextEvent() async throws -> IMAPResponseEvent {
        while true {
            if let event = try parseBuffered() { return event }
            buffer.releaseIfParsed()
            guard var more = try await connection.read() else {
                throw TransportError.closedByPeer(endpoint: endpoint.description)
            }
            traceRead(more)
            buffer.absorb(&more)
        }
    }

    /// What the server sent, in the trace as the lines it was (`-vv`).
    func traceRead(_ bytes: ByteBuffer) {
        guard trace.isEnabled else { return }
        serverLines.feed(bytes.readableBytesView) { trace.server($0) }
    }
}
