import Logging
@testable import MailTransport
import Testing

/// IMAP openings against a scripted server: greeting, CAPABILITY, STARTTLS and the checks around
/// it, AUTHENTICATE (with and without SASL-IR) and LOGIN.
@Suite(.timeLimit(.minutes(1))) struct IMAPLoginTests {
    static let transcripts: [LoginTranscript] = [
        LoginTranscript(name: "greeting, CAPABILITY, AUTHENTICATE PLAIN with SASL-IR, ID", lines: [
            .server("* OK IMAP ready"),
            .client("a1 CAPABILITY"),
            .server("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN ID"),
            .server("a1 OK done"),
            .client("a2 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a2 OK [CAPABILITY IMAP4rev1 ID] logged in"),
            .client("a3 ID (\"name\" \"mailfunnel\" \"version\" \"0.1\")"),
            .server("* ID NIL"),
            .server("a3 OK done"),
        ]),
        LoginTranscript(name: "without SASL-IR the initial response answers the first continuation", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN"),
            .server("+ "),
            .client("AGplYW4AczNjcmV0"),
            .server("a1 OK logged in"),
        ]),
        LoginTranscript(name: "AUTHENTICATE LOGIN answers each prompt", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN SASL-IR] ready"),
            .client("a1 AUTHENTICATE LOGIN"),
            .server("+ VXNlcm5hbWU6"),
            .client("amVhbg=="),
            .server("+ UGFzc3dvcmQ6"),
            .client("czNjcmV0"),
            .server("a1 OK logged in"),
        ]),
        LoginTranscript(name: "LOGIN when no mechanism is in common", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=GSSAPI] ready"),
            .client("a1 LOGIN jean s3cret"),
            .server("a1 OK logged in"),
        ]),
        LoginTranscript(name: "CAPABILITY after a login whose OK lists no IMAP4rev1", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 OK [CAPABILITY IDLE] logged in"),
            .client("a2 CAPABILITY"),
            .server("* CAPABILITY IMAP4rev2 IDLE"),
            .server("a2 OK done"),
        ]),
        LoginTranscript(name: "LOGINDISABLED and no mechanism in common", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=GSSAPI] ready"),
        ], error: { IMAPError.noUsableMechanism(server: $0, offered: ["IMAP4rev1", "LOGINDISABLED", "AUTH=GSSAPI"]) }),
        LoginTranscript(name: "a BYE greeting", lines: [
            .server("* BYE too busy"),
        ], error: { IMAPError.bye(server: $0, text: "too busy") }),
        LoginTranscript(name: "STARTTLS required, not in the greeting's capabilities", tls: .startTLS, lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"),
        ], error: { IMAPError.startTLSNotOffered(server: $0) }),
        LoginTranscript(name: "STARTTLS required, not in CAPABILITY", tls: .startTLS, lines: [
            .server("* OK ready"),
            .client("a1 CAPABILITY"),
            .server("* CAPABILITY IMAP4rev1 AUTH=PLAIN"),
            .server("a1 OK done"),
        ], error: { IMAPError.startTLSNotOffered(server: $0) }),
        LoginTranscript(name: "bytes right after STARTTLS's OK", tls: .startTLS, lines: [
            .server("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready"),
            .client("a1 STARTTLS"),
            .server("a1 OK Begin TLS negotiation now"),
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected"),
        ], error: { TransportError.plaintextAfterStartTLS(endpoint: $0) }),
        LoginTranscript(name: "a refused AUTHENTICATE", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], error: { IMAPError.authenticationFailed(server: $0, user: "jean", text: "Authentication failed.") }),
        LoginTranscript(name: "a refused LOGIN", lines: [
            .server("* OK [CAPABILITY IMAP4rev1] ready"),
            .client("a1 LOGIN jean s3cret"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], error: { IMAPError.authenticationFailed(server: $0, user: "jean", text: "Authentication failed.") }),
        LoginTranscript(name: "a challenge the mechanism cannot answer is cancelled with *", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN"),
            .server("+ "),
            .client("AGplYW4AczNjcmV0"),
            .server("+ bW9yZQ=="),
            .client("*"),
        ], error: { IMAPError.authenticationFailed(server: $0, user: "jean", text: "unexpected SASL challenge: more") }),
        LoginTranscript(name: "a challenge that is not base64", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] ready"),
            .client("a1 AUTHENTICATE LOGIN"),
            .server("+ not base64!"),
        ], error: { IMAPError.protocolViolation(server: $0, detail: "AUTHENTICATE challenge is not base64") }),
    ]

    @Test(arguments: transcripts) func opens(_ transcript: LoginTranscript) async throws {
        try await transcript.play { endpoint, credentials in
            let client = try await IMAPClient.open(endpoint, credentials: credentials, logger: LoginTranscript.logger)
            await client.close()
        }
    }

    /// `connect` stops before the login, with the capabilities it learnt.
    @Test func connectReadsTheCapabilitiesAndLogsInLater() async throws {
        let transcript = LoginTranscript(name: "connect, then login", lines: [
            .server("* OK ready"),
            .client("a1 CAPABILITY"),
            .server("* CAPABILITY IMAP4rev1 AUTH=PLAIN"),
            .server("a1 OK done"),
            .client("a2 AUTHENTICATE PLAIN"),
            .server("+ "),
            .client("AGplYW4AczNjcmV0"),
            .server("a2 OK [CAPABILITY IMAP4rev1 IDLE] logged in"),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await IMAPClient.connect(to: endpoint, logger: LoginTranscript.logger)
            #expect(client.capabilities == ["IMAP4rev1", "AUTH=PLAIN"])
            try await client.login(LoginTranscript.jean)
            #expect(client.has("IDLE"))
            await client.close()
        }
    }
}
