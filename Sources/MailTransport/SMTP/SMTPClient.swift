import Foundation
import Logging
import NIOCore
import SMTPCore

/// An SMTP submission session that sends many messages over one connection.
/// - SeeAlso: RFC 5321, RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 6152
///   (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING)
public final class SMTPClient {
    public let endpoint: ServerEndpoint
    let connection: MailConnection
    private let parser = SMTPReplyParser()
    var buffer = ByteBuffer()
    let trace: ProtocolTrace
    /// The name EHLO (or HELO) gives.
    let heloName: String
    /// EHLO keywords, upper-cased, with their parameters.
    public internal(set) var extensions: [String: String] = [:]

    private init(endpoint: ServerEndpoint, connection: MailConnection, heloName: String, logger: Logger) {
        self.endpoint = endpoint
        self.connection = connection
        self.heloName = heloName
        self.trace = ProtocolTrace(logger: logger, server: endpoint.description)
    }

    /// Connects, says EHLO (HELO if refused), upgrades with STARTTLS when the endpoint asks for it,
    /// and logs in when credentials are given.
    public static func open(_ endpoint: ServerEndpoint, credentials: Credentials?, heloName: String,
                            logger: Logger) async throws -> SMTPClient {
        let connection = try await MailConnection.connect(to: endpoint)
        let c = SMTPClient(endpoint: endpoint, connection: connection, heloName: heloName, logger: logger)
        let opening = SessionOpeningStateMachine(requiresStartTLS: endpoint.tls == .startTLS, capabilityQuery: .always,
                                                 logsIn: credentials != nil)
        try await c.open(opening, credentials: credentials)
        return c
    }

    /// EHLO, or HELO from a server that refuses it (then no extensions).
    func hello(_ name: String) async throws {
        try await send("EHLO \(name)")
        let r = try await reply()
        if r.code == 250 {
            extensions = [:]
            for line in r.lines.dropFirst() {
                let parts = line.split(separator: " ", maxSplits: 1)
                if let k = parts.first { extensions[k.uppercased()] = parts.count > 1 ? String(parts[1]) : "" }
            }
            return
        }
        try await command("HELO \(name)", expect: 250)
        extensions = [:]
    }

    /// The largest message the server takes (SIZE), if it says.
    public var sizeLimit: Int? { extensions["SIZE"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } }

    /// Sends one message to `recipients`; returns the server's final reply (with its queue id).
    /// MAIL, RCPT and DATA/BDAT go in one write when the server has PIPELINING. After a refusal
    /// the transaction is reset (RSET), so the session can carry on with the next message.
    public func send(from sender: String, to recipients: [String], message: AppendBody, eightBit: Bool) async throws -> SMTPReply {
        let mail = mailCommand(from: sender, to: recipients, size: message.size, eightBit: eightBit)
        let chunking = extensions["CHUNKING"] != nil
        let commands = [mail] + recipients.map { "RCPT TO:<\($0)>" } + (chunking ? [] : ["DATA"])
        var replies: [SMTPReply] = []
        if extensions["PIPELINING"] != nil {
            for c in commands { trace.client(c) }
            try await connection.write(Array(commands.map { $0 + "\r\n" }.joined().utf8))
            for _ in commands { replies.append(try await reply()) }
        } else {
            for c in commands {
                try await send(c)
                let r = try await reply()
                replies.append(r)
                if !r.isPositive { break }
            }
        }
        let failed = zip(commands, replies).first { command, r in
            let ok = command == "DATA" ? r.code == 354 : (r.code == 250 || (command.hasPrefix("RCPT") && r.code == 251))
            return !ok
        }
        if let (command, r) = failed {
            let dataAccepted = commands.last == "DATA" && replies.count == commands.count && replies.last?.code == 354
            try await resetAfterFailure(dataAccepted: dataAccepted)
            throw SMTPError.rejected(server: endpoint.description, command: String(command.prefix(4)), reply: r)
        }
        if chunking {
            // One BDAT per chunk read from the spool; the last says LAST. No dot-stuffing needed.
            var offset = 0
            repeat {
                let chunk = try message.readChunk(at: offset, maxLength: 1 << 20)
                offset += chunk.readableBytes
                let last = offset >= message.size
                let header = "BDAT \(chunk.readableBytes)\(last ? " LAST" : "")"
                trace.client(header + " <\(chunk.readableBytes) bytes>")
                try await connection.write(Array((header + "\r\n").utf8))
                try await connection.write(chunk)
                let r = try await reply()
                guard r.code == 250 else {
                    try await resetAfterFailure(dataAccepted: false)
                    throw SMTPError.rejected(server: endpoint.description, command: "BDAT", reply: r)
                }
                if last { return r }
            } while true
        }
        var stuffer = DotStuffer()
        var offset = 0
        while offset < message.size {
            let chunk = try message.readChunk(at: offset, maxLength: 256 << 10)
            guard chunk.readableBytes > 0 else { break }
            offset += chunk.readableBytes
            try await connection.write(stuffer.stuff(chunk))
        }
        try await connection.write(stuffer.terminator())
        trace.client("<\(message.size) bytes of message>")
        let r = try await reply()
        guard r.code == 250 else { throw SMTPError.rejected(server: endpoint.description, command: "DATA", reply: r) }
        return r
    }

    /// One message of `sendPipelined`: one recipient, so a refusal is all or nothing.
    public struct Envelope {
        public var from: String
        public var to: String
        public var message: AppendBody
        public var eightBit: Bool

        public init(from: String, to: String, message: AppendBody, eightBit: Bool) {
            self.from = from
            self.to = to
            self.message = message
            self.eightBit = eightBit
        }
    }

    /// Whether `sendPipelined` can be used: PIPELINING and CHUNKING. BDAT gives the message's
    /// length up front and needs no go-ahead (DATA waits for 354), so the next message's commands
    /// can follow a message's last byte at once (RFC 2920, RFC 3030 §4.2).
    public var canPipelineMessages: Bool { extensions["PIPELINING"] != nil && extensions["CHUNKING"] != nil }

    /// Sends the messages back to back: MAIL, RCPT and `BDAT n LAST` for each, gathered into
    /// writes of about 256 KiB, with the replies read behind the writes (at most `window`
    /// messages unanswered). Returns each answered message's outcome, in order: the final 250, or
    /// the first refusal among its replies. A refusal may follow from an earlier one (a
    /// transaction left open), so the caller resends refused messages alone after `reset()`.
    /// When the connection is lost the answers stop there, and `lost` says why; the unanswered
    /// messages may or may not have been accepted.
    public func sendPipelined(_ envelopes: [Envelope], window: Int = 64) async
        -> (answered: [Result<SMTPReply, SMTPError>], lost: Error?) {
        precondition(canPipelineMessages)
        var answered: [Result<SMTPReply, SMTPError>] = []
        var outbox = Outbox(connection)
        func readAnswer() async throws {
            // MAIL, RCPT, BDAT: three replies, always (a refused MAIL makes RCPT and BDAT 503).
            var refusal: SMTPError?
            var last: SMTPReply?
            for command in ["MAIL", "RCPT", "BDAT"] {
                let r = try await reply()
                last = r
                let ok = r.code == 250 || (command == "RCPT" && r.code == 251)
                if !ok, refusal == nil { refusal = .rejected(server: endpoint.description, command: command, reply: r) }
            }
            answered.append(refusal.map { .failure($0) } ?? .success(last!))
        }
        do {
            for (i, e) in envelopes.enumerated() {
                let size = e.message.size
                let commands = [mailCommand(from: e.from, to: [e.to], size: size, eightBit: e.eightBit),
                                "RCPT TO:<\(e.to)>", "BDAT \(size) LAST"]
                if trace.isEnabled { for c in commands { trace.client(c) } }
                outbox.write(commands.joined(separator: "\r\n") + "\r\n")
                let written = try await outbox.write(e.message)
                guard written == size else {
                    // BDAT's length is on the wire already: the stream cannot be mended.
                    throw TransportError.messageCutShort(endpoint: endpoint.description, size: size, sent: written)
                }
                trace.client("<\(size) bytes of message>")
                if i + 1 - answered.count > window {
                    try await outbox.drain()
                    while i + 1 - answered.count > window / 2 { try await readAnswer() }
                }
            }
            try await outbox.drain()
            while answered.count < envelopes.count { try await readAnswer() }
            return (answered, nil)
        } catch {
            await connection.close()
            return (answered, error)
        }
    }

    /// MAIL FROM with the parameters the server takes: SIZE, BODY=8BITMIME, and SMTPUTF8 when
    /// an address needs it.
    private func mailCommand(from sender: String, to recipients: [String], size: Int, eightBit: Bool) -> String {
        var mail = "MAIL FROM:<\(sender)>"
        if extensions["SIZE"] != nil { mail += " SIZE=\(size)" }
        if eightBit && extensions["8BITMIME"] != nil { mail += " BODY=8BITMIME" }
        let needsUTF8 = ([sender] + recipients).contains { $0.utf8.contains { $0 >= 0x80 } }
        if needsUTF8 && extensions["SMTPUTF8"] != nil { mail += " SMTPUTF8" }
        return mail
    }

    /// Ends any transaction a refusal left open (RSET).
    public func reset() async throws {
        try await send("RSET")
        let r = try await reply()
        guard r.code == 250 else { throw SMTPError.rejected(server: endpoint.description, command: "RSET", reply: r) }
    }

    private func resetAfterFailure(dataAccepted: Bool) async throws {
        if dataAccepted {
            // The server waits for a message: end an empty one so it refuses it, then reset.
            try await connection.write(Array(".\r\n".utf8))
            _ = try await reply()
        }
        try await send("RSET")
        _ = try await reply()
    }

    public func quit() async {
        try? await send("QUIT")
        _ = try? await reply()
        await connection.close()
    }

    // MARK: wire

    @discardableResult
    func command(_ line: String, expect code: Int) async throws -> SMTPReply {
        try await send(line)
        let r = try await reply()
        guard r.code == code else { throw SMTPError.rejected(server: endpoint.description, command: line.components(separatedBy: " ")[0], reply: r) }
        return r
    }

    func send(_ line: String, redacted: String? = nil) async throws {
        trace.client(redacted ?? line)
        try await connection.write(Array((line + "\r\n").utf8))
    }

    func reply() async throws -> SMTPReply {
        while true {
            do {
                if let r = try parser.next(&buffer) {
                    trace.server("\(r)")
                    return r
                }
            } catch let e as SMTPReplyParser.ParseError {
                await connection.close()
                throw SMTPError.protocolViolation(server: endpoint.description, detail: e.description)
            }
            buffer.releaseIfParsed()
            guard var more = try await connection.read() else {
                throw TransportError.closedByPeer(endpoint: endpoint.description)
            }
            buffer.absorb(&more)
        }
    }
}
