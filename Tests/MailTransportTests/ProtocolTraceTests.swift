@testable import MailTransport
import Testing

/// What the protocol trace shows of lines that carry secrets.
struct ProtocolTraceTests {
    @Test(arguments: [
        ("a1 LOGIN jean hunter2", "a1 LOGIN jean <redacted>"),
        ("a1 LOGIN \"jean dupont\" \"hunter 2\"", "a1 LOGIN \"jean <redacted>"),
        ("a2 AUTHENTICATE PLAIN AGplYW4AaHVudGVyMg==", "a2 AUTHENTICATE PLAIN <redacted>"),
        ("a3 SELECT INBOX", "a3 SELECT INBOX"),
    ])
    func traceRedactsSecrets(line: String, shown: String) {
        #expect(ProtocolTrace.redact(line) == shown)
        #expect(!ProtocolTrace.redact(line).contains("hunter"))
    }
}

/// The server's side of a POP3 trace reads as the lines it sent.
struct POP3TraceTests {
    @Test func eventsReadAsTheirLines() {
        #expect(POP3Client.wireText(.ok("Dovecot ready.")) == "+OK Dovecot ready.")
        #expect(POP3Client.wireText(.ok("")) == "+OK")
        #expect(POP3Client.wireText(.err(code: "IN-USE", text: "locked")) == "-ERR [IN-USE] locked")
        #expect(POP3Client.wireText(.line("UIDL")) == "UIDL")
        #expect(POP3Client.wireText(.end) == ".")
    }
}
