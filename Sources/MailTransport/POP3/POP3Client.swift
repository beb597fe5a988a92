import Logging
import NIOCore
import POP3Core

/// A POP3 session over one connection, used by one task at a time.
/// - SeeAlso: RFC 1939, RFC 2449, RFC 2595 (STLS), RFC 5034 (AUTH)
public final class POP3Client {
    public let endpoint: ServerEndpoint
    let connection: MailConnection
    var parser: POP3ResponseParser
    var buffer = ByteBuffer()
    let trace: ProtocolTrace
    public internal(set) var capabilities: [String] = []
    /// Whether the server took UTF8 (RFC 6856): messages come as they are, not as its notice
    /// that they hold UTF-8.
    public internal(set) var utf8Enabled = false
    var greeting = ""

    private init(endpoint: ServerEndpoint, connection: MailConnection, logger: Logger, limits: POP3ResponseParser.Limits) {
        self.endpoint = endpoint
        self.connection = connection
        self.parser = POP3ResponseParser(limits: limits)
        self.trace = ProtocolTrace(logger: logger, server: endpoint.description)
    }

    /// Connects, upgrades with STLS when the endpoint asks for it (refusing a server that does not
    /// offer it), and logs in.
    public static func open(_ endpoint: ServerEndpoint, credentials: Credentials, logger: Logger,
                            limits: POP3ResponseParser.Limits = .init()) async throws -> POP3Client {
        let connection = try await MailConnection.connect(to: endpoint)
        let c = POP3Client(endpoint: endpoint, connection: connection, logger: logger, limits: limits)
        let opening = SessionOpeningStateMachine(requiresStartTLS: endpoint.tls == .startTLS, capabilityQuery: .always, logsIn: true)
        try await c.open(opening, credentials: credentials)
        return c
    }

    public func has(_ capability: String) -> Bool {
        capabilities.contains { $0.split(separator: " ").first.map(String.init)?.uppercased() == capability.uppercased() }
    }

    func refreshCapabilities() async throws {
        do {
            try await send("CAPA")
            parser.expect(.lines)
            _ = try await status(command: "CAPA")
            var caps: [String] = []
            while case let .line(l) = try await nextEvent() { caps.append(l.text) }
            capabilities = caps
        } catch let e as POP3Error {
            if case .commandFailed = e { capabilities = []; return }  // a server without CAPA
            throw e
        }
    }

    /// `EXPIRE n` days (or "NEVER") from CAPA: how long the server keeps retrieved messages.
    /// - SeeAlso: RFC 2449 §6.7
    public var expireDays: Int? {
        guard let line = capabilities.first(where: { $0.uppercased().hasPrefix("EXPIRE ") }) else { return nil }
        let value = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        return value.uppercased() == "NEVER" ? nil : Int(value)
    }

    // MARK: commands

    /// `STAT`: the number of messages and their total size.
    public func stat() async throws -> (count: Int, size: Int) {
        let text = try await simple("STAT")
        let parts = text.split(separator: " ")
        guard parts.count >= 2, let n = Int(parts[0]), let size = Int(parts[1]) else {
            throw POP3Error.protocolViolation(server: endpoint.description, detail: "STAT answered '\(text)'")
        }
        return (n, size)
    }

    /// `LIST`: message number → size.
    public func list() async throws -> [(number: Int, size: Int)] {
        try await listing("LIST").compactMap { n, rest in Int(String(decoding: rest, as: UTF8.self)).map { (n, $0) } }
    }

    /// `UIDL`: message number → unique id, as the bytes sent; nil when the server has no UIDL.
    public func uidl() async throws -> [(number: Int, uid: POP3UniqueID)]? {
        do {
            return try await listing("UIDL").map { ($0.0, POP3UniqueID(bytes: $0.1)) }
        } catch let POP3Error.commandFailed(_, command, _, _) where command == "UIDL" {
            return nil
        }
    }

    /// `n rest` lines: spaces before the number are skipped and `rest` is what follows the one
    /// space after it, as the listing has always been read (ledgers hold ids read this way).
    private func listing(_ command: String) async throws -> [(Int, [UInt8])] {
        try await send(command)
        parser.expect(.lines)
        _ = try await status(command: command)
        var out: [(Int, [UInt8])] = []
        while case let .line(l) = try await nextEvent() {
            let b = l.bytes
            let start = b.firstIndex { $0 != 0x20 } ?? b.endIndex
            let space = b[start...].firstIndex(of: 0x20) ?? b.endIndex
            guard space < b.endIndex, space + 1 < b.endIndex, let n = Int(String(decoding: b[start..<space], as: UTF8.self)) else {
                throw POP3Error.protocolViolation(server: endpoint.description, detail: "\(command) line '\(l.text.prefix(60))'")
            }
            out.append((n, Array(b[(space + 1)...])))
        }
        return out
    }

    /// `RETR n` (or `TOP n lines`), the message handed to `onBytes` piece by piece, dot-unstuffed.
    public func retrieve(_ number: Int, topLines: Int? = nil, onBytes: (ByteBuffer) throws -> Void) async throws {
        let command = topLines.map { "TOP \(number) \($0)" } ?? "RETR \(number)"
        try await send(command)
        parser.expect(.body)
        _ = try await status(command: command)
        while true {
            switch try await nextEvent() {
            case let .bodyBytes(b): try onBytes(b)
            case .end: return
            default: throw POP3Error.protocolViolation(server: endpoint.description, detail: "unexpected reply inside \(command)")
            }
        }
    }

    /// `RETR` for each of `numbers` in order: pipelined when the server has PIPELINING (at most
    /// `window` commands outstanding), else one after another. For each message `begin` is called,
    /// then `onBytes` with its content (dot-unstuffed, as the server sent it), then `end` with nil, or
    /// with the server's refusal when it answered -ERR (and the next message follows). A reply
    /// that breaks the protocol, or the connection failing, throws.
    public func retrieve(_ numbers: [Int], window: Int = 64, begin: @escaping (Int) -> Void,
                         onBytes: @escaping (ByteBuffer) -> Void,
                         end: @escaping (Int, POP3Error?) -> Void) async throws {
        guard !numbers.isEmpty else { return }
        let window = has("PIPELINING") ? max(1, window) : 1
        var sent = 0
        var answered = 0
        var inBody = false
        // Top the window up when half of it is answered, so the server never waits for commands.
        func topUp() -> ByteBuffer? {
            guard sent < numbers.count, sent - answered <= window / 2 else { return nil }
            let upTo = min(numbers.count, answered + window)
            var out = ByteBuffer()
            for m in numbers[sent..<upTo] { out.writeString("RETR \(m)\r\n") }
            trace.client(upTo - sent == 1 ? "RETR \(numbers[sent])" : "RETR ×\(upTo - sent) (pipelined)")
            sent = upTo
            return out
        }
        // The replies are read and parsed on the connection's event loop (see
        // `MailConnection.consumeReads`), the next commands written from there.
        func step() throws -> Bool {
            while let event = try parseBuffered() {
                let n = numbers[answered]
                if !inBody {
                    switch event {
                    case .ok:
                        inBody = true
                        continue
                    case let .err(code, text):
                        end(n, POP3Error.commandFailed(server: endpoint.description, command: "RETR \(n)", code: code, text: text))
                    default:
                        throw POP3Error.protocolViolation(server: endpoint.description, detail: "expected +OK or -ERR after RETR \(n)")
                    }
                } else {
                    switch event {
                    case let .bodyBytes(b):
                        onBytes(b)
                        continue
                    case .end:
                        inBody = false
                        end(n, nil)
                    default:
                        throw POP3Error.protocolViolation(server: endpoint.description, detail: "unexpected reply inside RETR \(n)")
                    }
                }
                answered += 1
                if answered == numbers.count { return true }
                if let out = topUp() { connection.writeNow(out) }
                begin(numbers[answered])
                parser.expect(.body)
            }
            return false
        }
        if let out = topUp() { try await connection.write(out) }
        begin(numbers[0])
        parser.expect(.body)
        if try step() { return }
        try await connection.consumeReads { more in
            self.buffer.absorb(&more)
            if try step() { return true }
            self.buffer.releaseIfParsed()
            return false
        }
    }

    /// `DELE` for each message, pipelined when the server has PIPELINING. Nothing is deleted until
    /// a QUIT is answered +OK. Returns the numbers the server accepted.
    public func delete(_ numbers: [Int]) async throws -> [Int] {
        var accepted: [Int] = []
        if has("PIPELINING") {
            var out = ByteBuffer()
            for n in numbers { out.writeString("DELE \(n)\r\n") }
            trace.client("DELE ×\(numbers.count) (pipelined)")
            try await connection.write(out)
            for n in numbers {
                parser.expect(.single)
                if case .ok = try await nextEvent() { accepted.append(n) }
            }
        } else {
            for n in numbers {
                try await send("DELE \(n)")
                parser.expect(.single)
                if case .ok = try await nextEvent() { accepted.append(n) }
            }
        }
        return accepted
    }

    public func noop() async throws { _ = try await simple("NOOP") }

    /// `QUIT`: ends the session and, when answered +OK, commits the deletions. Throws
    /// `POP3Error.quitFailed` otherwise: then the server deleted nothing.
    public func quit() async throws {
        do {
            _ = try await simple("QUIT")
        } catch {
            await connection.close()
            throw POP3Error.quitFailed(server: endpoint.description, detail: "\(error)")
        }
        await connection.close()
    }

    /// Drops the connection without QUIT: the server deletes nothing.
    public func close() async {
        await connection.close()
    }

    // MARK: wire

    @discardableResult
    func simple(_ command: String) async throws -> String {
        try await send(command)
        parser.expect(.single)
        return try await status(command: command.split(separator: " ").first.map(String.init) ?? command)
    }

    func status(expect: POP3ResponseParser.Expectation? = nil, command: String) async throws -> String {
        if let expect { parser.expect(expect) }
        switch try await nextEvent() {
        case let .ok(text): return text
        case let .err(code, text): throw POP3Error.commandFailed(server: endpoint.description, command: command, code: code, text: text)
        default: throw POP3Error.protocolViolation(server: endpoint.description, detail: "expected +OK or -ERR after \(command)")
        }
    }

    func send(_ line: String, redacted: String? = nil) async throws {
        trace.client(redacted ?? line)
        try await connection.write(Array((line + "\r\n").utf8))
    }

    /// An event as the line the server sent, for the trace (`-vv`); a message's bytes as their count.
    static func wireText(_ event: POP3Event) -> String {
        switch event {
        case let .ok(text): return text.isEmpty ? "+OK" : "+OK \(text)"
        case let .err(code, text): return "-ERR" + (code.map { " [\($0)]" } ?? "") + (text.isEmpty ? "" : " \(text)")
        case let .challenge(text): return "+ \(text)"
        case let .line(line): return line.description
        case let .bodyBytes(b): return "<\(b.readableBytes) bytes of message>"
        case .end: return "."
        }
    }

    /// The next event of what is buffered, or nil; a reply that breaks the protocol closes the
    /// connection.
    private func parseBuffered() throws -> POP3Event? {
        do {
            guard let event = try parser.next(&buffer) else { return nil }
            if trace.isEnabled { trace.server(Self.wireText(event)) }
            return event
        } catch let e as POP3ResponseParser.ParseError {
            connection.closeNow()
            throw POP3Error.protocolViolation(server: endpoint.description, detail: e.description)
        }
    }

    func nextEvent() async throws -> POP3Event {
        while true {
            if let event = try parseBuffered() { return event }
            buffer.releaseIfParsed()
            guard var more = try await connection.read() else {
                throw TransportError.closedByPeer(endpoint: endpoint.description)
            }
            buffer.absorb(&more)
        }
    }
}
