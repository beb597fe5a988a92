import Foundation
import IMAPCore
import Logging
import NIOCore

/// Message bytes an APPEND reads piece by piece, so a large message is never held whole.
public protocol AppendBody {
    var size: Int { get }
    /// Up to `maxLength` bytes from `offset`.
    func readChunk(at offset: Int, maxLength: Int) throws -> ByteBuffer
}

/// One message of an APPEND.
public struct AppendItem {
    public var flags: [String]
    public var date: Date?
    public var body: AppendBody

    public init(flags: [String], date: Date?, body: AppendBody) {
        self.flags = flags
        self.date = date
        self.body = body
    }
}

/// What SELECT or EXAMINE told about a mailbox.
public struct SelectedMailbox: Sendable, Equatable {
    public var name: String
    public var uidValidity: UInt32
    public var uidNext: UInt32?
    public var exists: UInt32
    public var permanentFlags: [String]
    public var readOnly: Bool
    public var highestModSeq: UInt64?
}

/// An IMAP session over one connection, used by one task at a time.
/// - SeeAlso: RFC 3501, RFC 9051
public final class IMAPClient {
    public let endpoint: ServerEndpoint
    private let connection: MailConnection
    private var parser: IMAPResponseParser
    private var buffer = ByteBuffer()
    private var tagNumber = 0
    private var trace: ProtocolTrace
    public private(set) var capabilities: [String] = [] {
        didSet { capabilitySet = Set(capabilities.map { $0.uppercased() }) }
    }
    /// The capabilities upper-cased, for `has` (asked for every APPENDed message).
    private var capabilitySet: Set<String> = []
    public private(set) var encoder = IMAPCommandEncoder()
    public private(set) var selected: SelectedMailbox?
    /// Untagged EXISTS seen since the last command (IDLE and NOOP report new mail this way).
    public private(set) var lastExists: UInt32?
    private var closed = false

    private init(endpoint: ServerEndpoint, connection: MailConnection, logger: Logger, limits: IMAPResponseParser.Limits) {
        self.endpoint = endpoint
        self.connection = connection
        self.parser = IMAPResponseParser(limits: limits)
        self.trace = ProtocolTrace(logger: logger, server: endpoint.description)
    }

    /// Connects, reads the greeting and, for STARTTLS endpoints, upgrades (refusing a server that
    /// does not offer it). Returns a session that is not yet logged in.
    public static func connect(to endpoint: ServerEndpoint, logger: Logger,
                               limits: IMAPResponseParser.Limits = .init()) async throws -> IMAPClient {
        let connection = try await MailConnection.connect(to: endpoint)
        let client = IMAPClient(endpoint: endpoint, connection: connection, logger: logger, limits: limits)
        do {
            try await client.readGreeting()
            if endpoint.tls == .startTLS {
                if client.capabilities.isEmpty { try await client.refreshCapabilities() }
                guard client.has("STARTTLS") else { throw IMAPError.startTLSNotOffered(server: endpoint.description) }
                _ = try await client.run(.startTLS)
                // Bytes after the OK, before the handshake, would be an attacker's (CVE-2011-0411).
                guard client.buffer.readableBytes == 0 else {
                    throw TransportError.plaintextAfterStartTLS(endpoint: endpoint.description)
                }
                try await connection.startTLS()
                client.capabilities = []  // what was said in plain text no longer counts
            }
            if client.capabilities.isEmpty { try await client.refreshCapabilities() }
            return client
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Connects, logs in and introduces itself (ID): a session ready for work. Closes the
    /// connection if any step fails.
    public static func open(_ endpoint: ServerEndpoint, credentials: Credentials, logger: Logger) async throws -> IMAPClient {
        let c = try await connect(to: endpoint, logger: logger)
        do {
            try await c.login(credentials)
            try await c.id([("name", "mailfunnel"), ("version", "0.1")])
        } catch {
            await c.close()
            throw error
        }
        return c
    }

    public func has(_ capability: String) -> Bool {
        capabilitySet.contains(capability.uppercased())
    }

    /// `APPENDLIMIT=n` from the capabilities, if the server announced one.
    public var appendLimit: Int? {
        capabilities.lazy.compactMap { c -> Int? in
            c.uppercased().hasPrefix("APPENDLIMIT=") ? Int(c.dropFirst("APPENDLIMIT=".count)) : nil
        }.first
    }

    private func readGreeting() async throws {
        let event = try await nextEvent()
        guard case let .untagged(.status(status, code, text)) = event else {
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "no greeting")
        }
        if status == .bye { throw IMAPError.bye(server: endpoint.description, text: text) }
        if case let .capability(caps)? = code { setCapabilities(caps) }
    }

    public func refreshCapabilities() async throws {
        _ = try await run(.capability)
    }

    private func setCapabilities(_ caps: [String]) {
        capabilities = caps
        encoder = IMAPCommandEncoder(literalPlus: has("LITERAL+"), literalMinus: has("LITERAL-"),
                                     utf8Accept: encoder.utf8Accept)
    }

    // MARK: login

    /// Logs in with the strongest method both sides support: SCRAM-SHA-256, PLAIN, CRAM-MD5, then
    /// LOGIN (never in plain text unless the endpoint says `.none`).
    public func login(_ credentials: Credentials) async throws {
        let offered = capabilities.filter { $0.uppercased().hasPrefix("AUTH=") }.map { String($0.dropFirst(5)).uppercased() }
        let preference = credentials.kind == .oauthToken ? SASLMechanism.tokenPreference : SASLMechanism.passwordPreference
        do {
            if let mechanism = preference.first(where: { offered.contains($0.rawValue) }) {
                try await authenticate(mechanism, credentials)
            } else if credentials.kind == .password && !has("LOGINDISABLED") {
                _ = try await run(.login(user: credentials.user, password: credentials.secret))
            } else {
                throw IMAPError.noUsableMechanism(server: endpoint.description, offered: capabilities)
            }
        } catch let IMAPError.commandFailed(server, _, status, code, text, _) where status == .no || status == .bad {
            _ = code
            throw IMAPError.authenticationFailed(server: server, user: credentials.user, text: text)
        }
        // Servers usually send capabilities with the OK; if not, ask (they change after login).
        if !has("IMAP4rev1") && !has("IMAP4rev2") { try await refreshCapabilities() }
    }

    /// `AUTHENTICATE` with SASL-IR when offered.
    /// - SeeAlso: RFC 3501 §6.2.2, RFC 4959
    public func authenticate(_ mechanism: SASLMechanism, _ credentials: Credentials) async throws {
        var sasl = SASLClient(mechanism: mechanism, credentials: credentials)
        let initial = sasl.initialResponse()
        let useIR = has("SASL-IR") && initial != nil
        let tag = nextTag()
        let command = IMAPCommand.authenticate(mechanism: mechanism.rawValue,
                                               initialResponse: useIR ? Data(initial!).base64EncodedString() : nil)
        try await send(encoder.encode(tag: tag, command), tag: tag, sensitive: true)
        var pendingInitial = useIR ? nil : initial
        while true {
            let event = try await nextEvent()
            switch event {
            case let .continuation(text):
                var answer: [UInt8]
                if let first = pendingInitial {
                    answer = first
                    pendingInitial = nil
                } else {
                    guard let challenge = Data(base64Encoded: text) ?? (text.isEmpty ? Data() : nil) else {
                        throw IMAPError.protocolViolation(server: endpoint.description, detail: "AUTHENTICATE challenge is not base64")
                    }
                    do {
                        answer = try sasl.respond(to: Array(challenge))
                    } catch {
                        try await connection.write(Array("*\r\n".utf8))  // cancel the exchange
                        throw IMAPError.authenticationFailed(server: endpoint.description, user: credentials.user, text: "\(error)")
                    }
                }
                trace.client("<redacted SASL response>")
                try await connection.write(Array((Data(answer).base64EncodedString() + "\r\n").utf8))
            case let .tagged(t) where t.tag == tag:
                guard t.status == .ok else {
                    throw IMAPError.authenticationFailed(server: endpoint.description, user: credentials.user, text: t.text)
                }
                if sasl.awaitingServerFinal {
                    throw IMAPError.authenticationFailed(server: endpoint.description, user: credentials.user,
                                                        text: "the server did not prove it knows the password (no SCRAM server signature)")
                }
                if case let .capability(caps)? = t.code { setCapabilities(caps) }
                return
            default:
                try handleUnsolicited(event)
            }
        }
    }

    // MARK: commands

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

    private func collect(tag: String, name: String, mailbox: String?,
                         onUntagged: (UntaggedResponse) throws -> Void,
                         onFetch: (IMAPResponseEvent) throws -> Void) async throws -> TaggedResponse {
        while true {
            let event = try await nextEvent()
            if let done = try handle(event, tag: tag, name: name, mailbox: mailbox, onUntagged: onUntagged, onFetch: onFetch) {
                return done
            }
        }
    }

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
            self.buffer.absorb(&more)
            done = try step()
            if done == nil { self.buffer.releaseIfParsed() }
            return done != nil
        }
        return done!
    }

    /// One event of a command's response: the tagged response that ends it, or nil to read on.
    private func handle(_ event: IMAPResponseEvent, tag: String, name: String, mailbox: String?,
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
        case .fetchBegan, .fetchAttribute, .fetchBodyBegan, .fetchBodyBytes, .fetchBodyEnded, .fetchEnded:
            try onFetch(event)
        case let .untagged(u):
            try noteUntagged(u)
            try onUntagged(u)
        case .continuation:
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "an unexpected continuation during \(name)")
        }
        return nil
    }

    private func noteUntagged(_ u: UntaggedResponse) throws {
        switch u {
        case let .capability(caps): setCapabilities(caps)
        case let .exists(n): lastExists = n; selected?.exists = n
        case let .status(.bye, _, text): trace.server("* BYE \(text)")
        default: break
        }
    }

    private func handleUnsolicited(_ event: IMAPResponseEvent) throws {
        if case let .untagged(u) = event { try noteUntagged(u) }
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

    /// Every mailbox, with SPECIAL-USE attributes when the server supports them.
    public func list() async throws -> [ListEntry] {
        var entries: [ListEntry] = []
        try await run(.list(reference: "", pattern: "*", returnSpecialUse: has("SPECIAL-USE") && has("LIST-EXTENDED"))) { u in
            if case let .list(e) = u { entries.append(e) }
        }
        return entries
    }

    public func create(_ mailbox: String) async throws {
        try await run(.create(mailbox), mailbox: mailbox)
    }

    /// SELECT (or EXAMINE when `readOnly`).
    public func select(_ mailbox: String, readOnly: Bool = false) async throws -> SelectedMailbox {
        var result = SelectedMailbox(name: mailbox, uidValidity: 0, uidNext: nil, exists: 0, permanentFlags: [],
                                     readOnly: readOnly, highestModSeq: nil)
        let done = try await run(readOnly ? .examine(mailbox) : .select(mailbox), mailbox: mailbox) { u in
            switch u {
            case let .exists(n): result.exists = n
            case let .status(.ok, code?, _):
                switch code {
                case let .uidValidity(v): result.uidValidity = v
                case let .uidNext(n): result.uidNext = n
                case let .permanentFlags(f): result.permanentFlags = f
                case let .highestModSeq(m): result.highestModSeq = m
                default: break
                }
            default: break
            }
        }
        if done.code == .readOnly { result.readOnly = true }
        guard result.uidValidity != 0 else {
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "SELECT \(mailbox) gave no UIDVALIDITY")
        }
        selected = result
        lastExists = result.exists
        return result
    }

    /// `UID SEARCH criteria`, as a list of UIDs (ESEARCH results are expanded).
    public func uidSearch(_ criteria: String) async throws -> [UInt32] {
        var uids: [UInt32] = []
        try await run(.uidSearch(criteria), mailbox: selected?.name) { u in
            if case let .search(found) = u { uids += found }
            if case let .esearch(_, _, items) = u, let all = items["ALL"], let set = UIDSet(all) { uids += set.uids }
        }
        return uids
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

    /// APPENDs messages, all in one command when the server has MULTIAPPEND (an all-or-nothing
    /// transaction), and returns APPENDUID's UIDVALIDITY and UIDs when the server has UIDPLUS.
    /// - SeeAlso: RFC 3501 §6.3.11, RFC 3502, RFC 4315
    @discardableResult
    public func append(_ items: [AppendItem], to mailbox: String) async throws -> (uidValidity: UInt32, uids: [UInt32])? {
        precondition(!items.isEmpty)
        precondition(items.count == 1 || has("MULTIAPPEND"), "several messages in one APPEND need MULTIAPPEND")
        let tag = nextTag()
        // With LITERAL+ nothing waits for the server, so the command, each message's head and its
        // bytes go out gathered.
        var outbox = Outbox(connection)
        func queue(_ chunks: [CommandChunk]) async throws {
            if chunks.contains(where: { if case .waitForContinuation = $0 { return true } else { return false } }) {
                try await outbox.drain()
                try await send(chunks, tag: tag, sensitive: false)
                return
            }
            for case let .bytes(bytes) in chunks {
                if trace.isEnabled { trace.client(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)) }
                outbox.write(bytes)
            }
        }
        try await queue(encoder.appendStart(tag: tag, mailbox: mailbox))
        for item in items {
            try await queue(encoder.appendItem(flags: item.flags, date: item.date, size: item.body.size))
            let written = try await outbox.write(item.body)
            guard written == item.body.size else {
                // The literal's length is on the wire already: the stream cannot be mended.
                await connection.close()
                throw TransportError.messageCutShort(endpoint: endpoint.description, size: item.body.size, sent: written)
            }
            trace.client("<\(item.body.size) bytes of message>")
        }
        try await queue(encoder.appendEnd())
        try await outbox.drain()
        let done = try await collect(tag: tag, name: "APPEND", mailbox: mailbox, onUntagged: { _ in }, onFetch: { _ in })
        if case let .appendUID(validity, uids)? = done.code { return (validity, uids.uids) }
        return nil
    }

    public func uidStore(_ set: UIDSet, _ operation: String, flags: [String]) async throws {
        try await run(.uidStore(set, operation: operation, flags: flags), mailbox: selected?.name)
    }

    public func uidExpunge(_ set: UIDSet) async throws {
        try await run(.uidExpunge(set), mailbox: selected?.name)
    }

    public func expunge() async throws {
        try await run(.expunge, mailbox: selected?.name)
    }

    public func noop() async throws {
        try await run(.noop)
    }

    public func id(_ fields: [(String, String)]) async throws {
        guard has("ID") else { return }
        try await run(.id(fields))
    }

    /// IDLE until the server reports new messages in the selected mailbox (EXISTS above what it was)
    /// or `timeout` passes, then DONE. Returns whether new mail arrived. Callers re-issue IDLE well
    /// before 29 minutes, as servers may drop an idle client after 30.
    /// - SeeAlso: RFC 2177
    public func idle(timeout: Duration) async throws -> Bool {
        guard has("IDLE") else {
            throw IMAPError.commandFailed(server: endpoint.description, command: "IDLE", status: .no, code: nil,
                                          text: "the server does not offer IDLE", mailbox: selected?.name)
        }
        let before = selected?.exists ?? 0
        let tag = nextTag()
        try await send(encoder.encode(tag: tag, .idle), tag: tag, sensitive: false)
        while true {
            let event = try await nextEvent()
            if case .continuation = event { break }
            if case let .tagged(t) = event, t.tag == tag {
                throw IMAPError.commandFailed(server: endpoint.description, command: "IDLE", status: t.status, code: t.code,
                                              text: t.text, mailbox: selected?.name)
            }
            try handleUnsolicited(event)
        }
        var newMail = (selected?.exists ?? 0) > before
        let deadline = ContinuousClock.now + timeout
        while !newMail {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let event = try await nextEvent(waitingAtMost: left) else { break }
            if case let .untagged(u) = event {
                try noteUntagged(u)
                if case let .exists(n) = u, n > before { newMail = true }
            }
        }
        try await send(encoder.done(), tag: tag, sensitive: false)
        _ = try await collect(tag: tag, name: "IDLE", mailbox: selected?.name, onUntagged: { _ in }, onFetch: { _ in })
        return newMail || (selected?.exists ?? 0) > before
    }

    /// Closes the connection from anywhere (a cancellation handler): whatever waits on it fails.
    public var abort: @Sendable () -> Void {
        let c = connection
        return { c.closeNow() }
    }

    /// Says goodbye and closes; errors on the way out are ignored (the work is done).
    public func logout() async {
        guard !closed else { return }
        closed = true
        _ = try? await run(.logout)
        await connection.close()
    }

    /// Closes without LOGOUT (after an error).
    public func close() async {
        closed = true
        await connection.close()
    }

    // MARK: wire

    private func nextTag() -> String {
        tagNumber += 1
        return "a\(tagNumber)"
    }

    private func send(_ chunks: [CommandChunk], tag: String, sensitive: Bool) async throws {
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
            buffer.absorb(&more)
        }
    }

    /// The next event of what is buffered, or nil. A reply that breaks the protocol closes the
    /// connection: nothing after it can be trusted to be framed right.
    private func parseBuffered() throws -> IMAPResponseEvent? {
        do {
            guard let event = try parser.next(&buffer) else { return nil }
            if trace.isEnabled { traceEvent(event) }
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
            buffer.absorb(&more)
        }
    }

    private func traceEvent(_ event: IMAPResponseEvent) {
        switch event {
        case let .fetchBodyBytes(b): trace.server("<\(b.readableBytes) bytes of message>")
        default: trace.server("\(event)")
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
