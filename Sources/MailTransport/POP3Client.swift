import Crypto
import Foundation
import Logging
import NIOCore
import POP3Core

/// A POP3 failure, naming the server and the command, with the RFC 3206 code when given.
public enum POP3Error: Error, Equatable, CustomStringConvertible {
    case commandFailed(server: String, command: String, code: String?, text: String)
    case authenticationFailed(server: String, user: String, code: String?, text: String)
    case startTLSNotOffered(server: String)
    /// QUIT was not answered +OK: the server deleted nothing.
    case quitFailed(server: String, detail: String)
    case protocolViolation(server: String, detail: String)

    public var description: String {
        switch self {
        case let .commandFailed(s, c, code, t): return "\(s): \(c) failed: -ERR\(code.map { " [\($0)]" } ?? "") \(t)"
        case let .authenticationFailed(s, u, code, t): return "\(s): login as \(u) refused:\(code.map { " [\($0)]" } ?? "") \(t)"
        case let .startTLSNotOffered(s):
            return "\(s) does not offer STLS; refusing to send a password in plain text (use pop3s://, or --tls none if you really mean it)"
        case let .quitFailed(s, d): return "\(s): QUIT failed (\(d)); the server deleted nothing"
        case let .protocolViolation(s, d): return "\(s): protocol error: \(d)"
        }
    }

    /// The RFC 3206 code, classified, when the server gave one.
    public var responseCode: POP3ResponseCode? {
        switch self {
        case let .commandFailed(_, _, code, _), let .authenticationFailed(_, _, code, _): return code.map(POP3ResponseCode.init)
        default: return nil
        }
    }
}

/// A POP3 session over one connection, used by one task at a time.
/// - SeeAlso: RFC 1939, RFC 2449, RFC 2595 (STLS), RFC 5034 (AUTH)
public final class POP3Client {
    public let endpoint: ServerEndpoint
    private let connection: MailConnection
    private var parser: POP3ResponseParser
    private var buffer = ByteBuffer()
    private let trace: ProtocolTrace
    public private(set) var capabilities: [String] = []
    private var greeting = ""

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
        do {
            c.greeting = try await c.status(expect: .single, command: "greeting")
            try await c.refreshCapabilities()
            if endpoint.tls == .startTLS {
                guard c.has("STLS") else { throw POP3Error.startTLSNotOffered(server: endpoint.description) }
                _ = try await c.simple("STLS")
                guard c.buffer.readableBytes == 0 else { throw TransportError.plaintextAfterStartTLS(endpoint: endpoint.description) }
                try await connection.startTLS()
                try await c.refreshCapabilities()
            }
            try await c.login(credentials)
            return c
        } catch {
            await connection.close()
            throw error
        }
    }

    public func has(_ capability: String) -> Bool {
        capabilities.contains { $0.split(separator: " ").first.map(String.init)?.uppercased() == capability.uppercased() }
    }

    private var saslMechanisms: [String] {
        capabilities.first { $0.uppercased().hasPrefix("SASL ") }.map { $0.split(separator: " ").dropFirst().map { $0.uppercased() } } ?? []
    }

    func refreshCapabilities() async throws {
        do {
            try await send("CAPA")
            parser.expect(.lines)
            _ = try await status(command: "CAPA")
            var caps: [String] = []
            while case let .line(l) = try await nextEvent() { caps.append(l) }
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

    private func login(_ credentials: Credentials) async throws {
        // RFC 6856: non-ASCII user names and passwords go as UTF-8 once UTF8 is enabled.
        if has("UTF8") && (credentials.user + credentials.secret).utf8.contains(where: { $0 >= 0x80 }) {
            _ = try await simple("UTF8")
        }
        let preference = credentials.kind == .oauthToken ? SASLMechanism.tokenPreference : SASLMechanism.passwordPreference
        do {
            if let mechanism = preference.first(where: { saslMechanisms.contains($0.rawValue) }) {
                try await authenticate(mechanism, credentials)
            } else if credentials.kind == .password && (has("USER") || apopTimestamp(inGreeting: greeting) == nil) {
                _ = try await simple("USER \(credentials.user)")
                try await send("PASS \(credentials.secret)", redacted: "PASS <redacted>")
                parser.expect(.single)
                _ = try await status(command: "PASS")
            } else if credentials.kind == .password, let stamp = apopTimestamp(inGreeting: greeting) {
                let digest = Insecure.MD5.hash(data: Array((stamp + credentials.secret).utf8)).map { String(format: "%02x", $0) }.joined()
                try await send("APOP \(credentials.user) \(digest)", redacted: "APOP \(credentials.user) <redacted>")
                parser.expect(.single)
                _ = try await status(command: "APOP")
            } else {
                throw POP3Error.authenticationFailed(server: endpoint.description, user: credentials.user, code: nil,
                                                     text: "no login method in common (the server offers: \(capabilities.joined(separator: ", ")))")
            }
        } catch let POP3Error.commandFailed(server, _, code, text) {
            throw POP3Error.authenticationFailed(server: server, user: credentials.user, code: code, text: text)
        }
    }

    private func authenticate(_ mechanism: SASLMechanism, _ credentials: Credentials) async throws {
        var sasl = SASLClient(mechanism: mechanism, credentials: credentials)
        let initial = sasl.initialResponse()
        let command = "AUTH \(mechanism.rawValue)" + (initial.map { " " + (Data($0).base64EncodedString().isEmpty ? "=" : Data($0).base64EncodedString()) } ?? "")
        try await send(command, redacted: "AUTH \(mechanism.rawValue) <redacted>")
        while true {
            parser.expect(.sasl)
            switch try await nextEvent() {
            case .ok:
                if sasl.awaitingServerFinal {
                    throw POP3Error.authenticationFailed(server: endpoint.description, user: credentials.user, code: nil,
                                                         text: "the server did not prove it knows the password")
                }
                return
            case let .err(code, text):
                throw POP3Error.authenticationFailed(server: endpoint.description, user: credentials.user, code: code, text: text)
            case let .challenge(text):
                let challenge = Data(base64Encoded: text) ?? Data()
                let answer = try sasl.respond(to: Array(challenge))
                try await send(Data(answer).base64EncodedString(), redacted: "<redacted SASL response>")
            default:
                throw POP3Error.protocolViolation(server: endpoint.description, detail: "unexpected reply during AUTH")
            }
        }
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
        try await listing("LIST").compactMap { n, rest in Int(rest).map { (n, $0) } }
    }

    /// `UIDL`: message number → unique id; nil when the server has no UIDL.
    public func uidl() async throws -> [(number: Int, uid: String)]? {
        do {
            return try await listing("UIDL").map { ($0.0, $0.1) }
        } catch let POP3Error.commandFailed(_, command, _, _) where command == "UIDL" {
            return nil
        }
    }

    private func listing(_ command: String) async throws -> [(Int, String)] {
        try await send(command)
        parser.expect(.lines)
        _ = try await status(command: command)
        var out: [(Int, String)] = []
        while case let .line(l) = try await nextEvent() {
            let parts = l.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let n = Int(parts[0]) else {
                throw POP3Error.protocolViolation(server: endpoint.description, detail: "\(command) line '\(l.prefix(60))'")
            }
            out.append((n, String(parts[1])))
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
    private func simple(_ command: String) async throws -> String {
        try await send(command)
        parser.expect(.single)
        return try await status(command: command.split(separator: " ").first.map(String.init) ?? command)
    }

    private func status(expect: POP3ResponseParser.Expectation? = nil, command: String) async throws -> String {
        if let expect { parser.expect(expect) }
        switch try await nextEvent() {
        case let .ok(text): return text
        case let .err(code, text): throw POP3Error.commandFailed(server: endpoint.description, command: command, code: code, text: text)
        default: throw POP3Error.protocolViolation(server: endpoint.description, detail: "expected +OK or -ERR after \(command)")
        }
    }

    private func send(_ line: String, redacted: String? = nil) async throws {
        trace.client(redacted ?? line)
        try await connection.write(Array((line + "\r\n").utf8))
    }

    /// The next event of what is buffered, or nil; a reply that breaks the protocol closes the
    /// connection.
    private func parseBuffered() throws -> POP3Event? {
        do {
            guard let event = try parser.next(&buffer) else { return nil }
            if trace.isEnabled {
                if case let .bodyBytes(b) = event { trace.server("<\(b.readableBytes) bytes of message>") } else { trace.server("\(event)") }
            }
            return event
        } catch let e as POP3ResponseParser.ParseError {
            connection.closeNow()
            throw POP3Error.protocolViolation(server: endpoint.description, detail: e.description)
        }
    }

    private func nextEvent() async throws -> POP3Event {
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
