import NIOCore
import POP3Core
import Testing

/// Feeds `wire` in chunks after announcing each expectation in turn; body bytes are joined.
func parse(_ wire: String, _ expectations: [POP3ResponseParser.Expectation], chunk: Int = .max,
           limits: POP3ResponseParser.Limits = .init()) throws -> [POP3Event] {
    var parser = POP3ResponseParser(limits: limits)
    var buffer = ByteBuffer()
    let bytes = Array(wire.utf8)
    var events: [POP3Event] = []
    var queue = expectations[...]
    var i = 0
    var waiting = true  // for the next expectation
    // Track the current expectation to know when a +OK completes it.
    var current: POP3ResponseParser.Expectation?
    func step() throws {
        while true {
            if waiting {
                guard let e = queue.popFirst() else { return }
                parser.expect(e)
                current = e
                waiting = false
            }
            guard let event = try parser.next(&buffer) else { return }
            if case let .bodyBytes(b) = event, case var .bodyBytes(prev)? = events.last {
                var more = b
                prev.writeBuffer(&more)
                events[events.count - 1] = .bodyBytes(prev)
            } else {
                events.append(event)
            }
            switch event {
            case .end, .err, .challenge: waiting = true
            case .ok: if current == .single || current == .sasl { waiting = true }
            default: break
            }
        }
    }
    repeat {
        let end = min(bytes.count, i + chunk)
        buffer.writeBytes(bytes[i..<end])
        i = end
        try step()
    } while i < bytes.count
    return events
}

extension POP3Event {
    static func body(_ s: String) -> POP3Event { .bodyBytes(ByteBuffer(string: s)) }
}

struct POP3Fixture: CustomTestStringConvertible, Sendable {
    let name: String
    let wire: String
    let expectations: [POP3ResponseParser.Expectation]
    let events: [POP3Event]
    var testDescription: String { name }
}

struct POP3ParserTests {
    static let fixtures: [POP3Fixture] = [
        POP3Fixture(name: "Dovecot greeting", wire: "+OK Dovecot (Debian) ready.\r\n", expectations: [.single],
                    events: [.ok("Dovecot (Debian) ready.")]),
        POP3Fixture(name: "CAPA", wire: "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n",
                    expectations: [.lines],
                    events: [.ok(""), .line("CAPA"), .line("TOP"), .line("UIDL"), .line("RESP-CODES"), .line("PIPELINING"),
                             .line("AUTH-RESP-CODE"), .line("STLS"), .line("USER"), .line("SASL PLAIN LOGIN"), .end]),
        POP3Fixture(name: "UIDL listing", wire: "+OK\r\n1 000000015d7f4a8a\r\n2 000000025d7f4a8a\r\n.\r\n", expectations: [.lines],
                    events: [.ok(""), .line("1 000000015d7f4a8a"), .line("2 000000025d7f4a8a"), .end]),
        POP3Fixture(name: "RETR with stuffed dots", wire: "+OK 57 octets\r\nSubject: x\r\n\r\n..leading dot\r\n.\r\n...two\r\n.\r\n",
                    expectations: [.body],
                    events: [.ok("57 octets"), .body("Subject: x\r\n\r\n.leading dot\r\n"), .end]),
        POP3Fixture(name: "RETR body ends at a dot line only", wire: "+OK\r\nline\r\n.x\r\n..\r\n.\r\n", expectations: [.body],
                    events: [.ok(""), .body("line\r\nx\r\n.\r\n"), .end]),
        POP3Fixture(name: "RETR empty message", wire: "+OK 0 octets\r\n.\r\n", expectations: [.body], events: [.ok("0 octets"), .end]),
        POP3Fixture(name: "RETR without a final line end", wire: "+OK\r\nno newline\r\n.\r\n", expectations: [.body],
                    events: [.ok(""), .body("no newline\r\n"), .end]),
        POP3Fixture(name: "bare LF server", wire: "+OK\nSubject: y\n\n..dot\n.\n", expectations: [.body],
                    events: [.ok(""), .body("Subject: y\n\n.dot\n"), .end]),
        POP3Fixture(name: "-ERR with RFC 3206 code", wire: "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n",
                    expectations: [.single], events: [.err(code: "IN-USE", text: "Mailbox is locked by another POP3 session.")]),
        POP3Fixture(name: "-ERR AUTH", wire: "-ERR [AUTH] Authentication failed.\r\n", expectations: [.single],
                    events: [.err(code: "AUTH", text: "Authentication failed.")]),
        POP3Fixture(name: "-ERR plain", wire: "-ERR no such message\r\n", expectations: [.single], events: [.err(code: nil, text: "no such message")]),
        POP3Fixture(name: "SASL challenge then OK", wire: "+ \r\n+OK Logged in.\r\n", expectations: [.sasl, .sasl],
                    events: [.challenge(""), .ok("Logged in.")]),
        POP3Fixture(name: "pipelined DELEs and QUIT", wire: "+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n+OK Logging out, messages deleted.\r\n",
                    expectations: [.single, .single, .single],
                    events: [.ok("Marked to be deleted."), .ok("Marked to be deleted."), .ok("Logging out, messages deleted.")]),
        POP3Fixture(name: "a failed RETR has no body", wire: "-ERR There's no message 9.\r\n+OK\r\n", expectations: [.body, .single],
                    events: [.err(code: nil, text: "There's no message 9."), .ok("")]),
        // Pipelined RETRs: replies back to back in one stream, a refusal between two bodies, and
        // a body whose stuffed-dot line follows a run of ordinary lines.
        POP3Fixture(name: "pipelined RETRs", wire: "+OK\r\na\r\nb\r\n..c\r\n.\r\n-ERR [SYS/TEMP] busy\r\n+OK\r\nd\r\n.\r\n",
                    expectations: [.body, .body, .body],
                    events: [.ok(""), .body("a\r\nb\r\n.c\r\n"), .end, .err(code: "SYS/TEMP", text: "busy"),
                             .ok(""), .body("d\r\n"), .end]),
    ]

    @Test(arguments: fixtures)
    func parses(_ f: POP3Fixture) throws {
        #expect(try parse(f.wire, f.expectations) == f.events)
    }

    @Test(arguments: fixtures)
    func parsesAnyChunking(_ f: POP3Fixture) throws {
        for chunk in [1, 2, 3, 5] {
            #expect(try parse(f.wire, f.expectations, chunk: chunk) == f.events, "chunk \(chunk)")
        }
    }

    @Test func needMoreBytesConsumesNothing() throws {
        var p = POP3ResponseParser()
        p.expect(.body)
        var b = ByteBuffer(string: "+OK\r\nabc\r\n.")
        #expect(try p.next(&b) == .ok(""))
        #expect(try p.next(&b) == .body("abc\r\n"))
        #expect(try p.next(&b) == nil)
        #expect(b.readableBytes == 1)  // the dot waits for what follows
        b.writeString("\r\n")
        #expect(try p.next(&b) == .end)
    }

    @Test func limits() {
        #expect(throws: POP3ResponseParser.ParseError.self) {
            try parse("+OK " + String(repeating: "x", count: 100) + "\r\n", [.single], limits: .init(maxLineLength: 50))
        }
        #expect(throws: POP3ResponseParser.ParseError.self) {
            try parse("+OK " + String(repeating: "x", count: 100), [.single], chunk: 10, limits: .init(maxLineLength: 50))
        }
        #expect(throws: POP3ResponseParser.ParseError.self) {
            try parse("+OK\r\n" + String(repeating: "y\r\n", count: 100) + ".\r\n", [.body], limits: .init(maxBodySize: 100))
        }
        #expect(throws: POP3ResponseParser.ParseError.self) { try parse("HELLO\r\n", [.single]) }
    }

    @Test func codesAndAPOP() {
        #expect(POP3ResponseCode("IN-USE").isTemporary)
        #expect(POP3ResponseCode("login-delay") == .loginDelay)
        #expect(POP3ResponseCode("SYS/PERM").isTemporary == false)
        #expect(apopTimestamp(inGreeting: "POP3 server ready <1896.697170952@dbc.mtview.ca.us>") == "<1896.697170952@dbc.mtview.ca.us>")
        #expect(apopTimestamp(inGreeting: "Dovecot ready.") == nil)
    }
}
