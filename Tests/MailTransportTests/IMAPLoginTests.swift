import FunnelTestSupport
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
        LoginTranscript(name: "a refused AUTHENTICATE PLAIN: LOGIN, which hands over the same password, is not tried", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "PLAIN", answer: "NO [AUTHENTICATIONFAILED] Authentication failed.")],
                         ending: .refused, notTried: ["LOGIN command"])
        }),
        LoginTranscript(name: "a refused LOGIN", lines: [
            .server("* OK [CAPABILITY IMAP4rev1] ready"),
            .client("a1 LOGIN jean s3cret"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "LOGIN command", answer: "NO [AUTHENTICATIONFAILED] Authentication failed.")],
                         ending: .refused)
        }),
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

    /// GNU Mailutils 3.15 offers every GNU SASL mechanism, SCRAM-SHA-256 included, for accounts
    /// it cannot SCRAM (issue 19): each refused way gives way to the next.
    static let mailutilsCapabilities = "* CAPABILITY IMAP4rev1 NAMESPACE ID IDLE LITERAL+ UNSELECT AUTH=ANONYMOUS AUTH=CRAM-MD5 "
        + "AUTH=DIGEST-MD5 AUTH=EXTERNAL AUTH=GSSAPI AUTH=LOGIN AUTH=NTLM AUTH=PLAIN AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256"
    static let mailutilsOpening: [TranscriptServer.Line] = [
        .server("* OK IMAP4rev1 Debian GNU Mailutils 3.15"),
        .client("a1 CAPABILITY"),
        .server(mailutilsCapabilities),
        .server("a1 OK CAPABILITY Completed"),
        .client("a2 AUTHENTICATE SCRAM-SHA-256"),
        .server("+ "),
        .clientStarting(LoginTranscript.scramClientFirst),
        .server("a2 NO AUTHENTICATE SCRAM-SHA-256 failed"),
        .client("a3 AUTHENTICATE PLAIN"),
        .server("+ "),
        .client("AGplYW4AczNjcmV0"),
    ]

    static let fallbacks: [LoginTranscript] = [
        LoginTranscript(name: "Mailutils: SCRAM-SHA-256 refused, then PLAIN lets jean in", lines: mailutilsOpening + [
            .server("a3 OK AUTHENTICATE Completed"),
            .client("a4 ID (\"name\" \"mailfunnel\" \"version\" \"0.1\")"),
            .server("* ID NIL"),
            .server("a4 OK ID Completed"),
        ]),
        LoginTranscript(name: "Mailutils: every way refused, each named with its answer", lines: mailutilsOpening + [
            .server("a3 NO AUTHENTICATE PLAIN failed"),
            .client("a4 AUTHENTICATE CRAM-MD5"),
            .server("+ PDE4OTYuNjk3MTcwOTUyQG1haWx1dGlscy50ZXN0Pg=="),
            .client("amVhbiA3ODIxNjJlYzc5MGJlOWI4ZWVkNDA5N2M3YzZlZjQ5YQ=="),
            .server("a4 NO AUTHENTICATE CRAM-MD5 failed"),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [
                LoginAttempt(method: "SCRAM-SHA-256", answer: "NO AUTHENTICATE SCRAM-SHA-256 failed"),
                LoginAttempt(method: "PLAIN", answer: "NO AUTHENTICATE PLAIN failed"),
                LoginAttempt(method: "CRAM-MD5", answer: "NO AUTHENTICATE CRAM-MD5 failed"),
            ], ending: .refused, notTried: ["LOGIN", "LOGIN command"])
        }),
        LoginTranscript(name: "auth_mechanisms = [\"PLAIN\"]: PLAIN only, though SCRAM is offered", loginMethods: [.sasl(.plain)], lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256 AUTH=PLAIN] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "PLAIN", answer: "NO [AUTHENTICATIONFAILED] Authentication failed.")],
                         ending: .refused)
        }),
        LoginTranscript(name: "auth_mechanisms order: LOGIN before PLAIN", loginMethods: [.sasl(.login), .command, .sasl(.plain)], lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] ready"),
            .client("a1 AUTHENTICATE LOGIN"),
            .server("+ VXNlcm5hbWU6"),
            .client("amVhbg=="),
            .server("+ UGFzc3dvcmQ6"),
            .client("czNjcmV0"),
            .server("a1 OK logged in"),
        ]),
        LoginTranscript(name: "a mechanism the server does not take (BAD) says nothing of the password", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 BAD Unsupported authentication mechanism"),
            .client("a2 AUTHENTICATE LOGIN"),
            .server("+ VXNlcm5hbWU6"),
            .client("amVhbg=="),
            .server("+ UGFzc3dvcmQ6"),
            .client("czNjcmV0"),
            .server("a2 OK logged in"),
        ]),
        LoginTranscript(name: "SCRAM refused, then the LOGIN command when no other mechanism is offered", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 AUTH=SCRAM-SHA-256] ready"),
            .client("a1 AUTHENTICATE SCRAM-SHA-256"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
            .client("a2 LOGIN jean s3cret"),
            .server("a2 OK logged in"),
        ]),
        LoginTranscript(name: "NO [UNAVAILABLE] is temporary: nothing else is tried", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256 AUTH=PLAIN] ready"),
            .clientStarting("a1 AUTHENTICATE SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("a1 NO [UNAVAILABLE] Temporary authentication failure."),
        ], error: {
            IMAPError.commandFailed(server: $0, command: "AUTHENTICATE", status: .no, code: .other(name: "UNAVAILABLE", text: nil),
                                    text: "Temporary authentication failure.", mailbox: nil)
        }),
        LoginTranscript(name: "BYE and a closed connection after a refusal end the login", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256 AUTH=PLAIN] ready"),
            .clientStarting("a1 AUTHENTICATE SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("* BYE Too many authentication failures"),
            .server("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
            .serverCloses,
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [
                LoginAttempt(method: "SCRAM-SHA-256", answer: "NO [AUTHENTICATIONFAILED] Authentication failed."),
                LoginAttempt(method: "PLAIN", answer: "the server closed the connection"),
            ], ending: .closed)
        }),
    ]

    @Test(arguments: fallbacks) func fallsBack(_ transcript: LoginTranscript) async throws {
        try await opens(transcript)
    }

    /// RFC 6855: ENABLE UTF8=ACCEPT whenever offered, after login and before any SELECT; mailbox
    /// names then go as UTF-8 in quoted strings, and come back undecoded.
    @Test func enablesUTF8AcceptWhenOfferedAndNamesMailboxesInUTF8() async throws {
        let transcript = LoginTranscript(name: "UTF8=ACCEPT", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ENABLE UTF8=ACCEPT] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 OK [CAPABILITY IMAP4rev1 ENABLE UTF8=ACCEPT] logged in"),
            .client("a2 ENABLE UTF8=ACCEPT"),
            .server("* ENABLED UTF8=ACCEPT"),
            .server("a2 OK ENABLE completed"),
            .client("a3 SELECT \"Entwürfe\""),
            .server("* 0 EXISTS"),
            .server("* OK [UIDVALIDITY 7] ok"),
            .server("a3 OK [READ-WRITE] selected"),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await IMAPClient.connect(to: endpoint, logger: LoginTranscript.logger)
            try await client.login(credentials)
            #expect(client.utf8Enabled)
            #expect(client.wireName("Entwürfe") == "Entwürfe")
            #expect(client.mailboxName(fromWire: "Tom&APw-Jerry") == "Tom&APw-Jerry")
            _ = try await client.select(client.wireName("Entwürfe"))
            await client.close()
        }
    }

    /// A server that refuses the ENABLE keeps modified UTF-7 and ASCII quoted strings.
    @Test func aRefusedEnableKeepsModifiedUTF7() async throws {
        let transcript = LoginTranscript(name: "UTF8=ACCEPT refused", lines: [
            .server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN UTF8=ACCEPT] ready"),
            .client("a1 AUTHENTICATE PLAIN AGplYW4AczNjcmV0"),
            .server("a1 OK logged in"),
            .client("a2 ENABLE UTF8=ACCEPT"),
            .server("a2 BAD unknown command"),
            .client("a3 SELECT Entw&APw-rfe"),
            .server("* OK [UIDVALIDITY 7] ok"),
            .server("a3 OK [READ-WRITE] selected"),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await IMAPClient.connect(to: endpoint, logger: LoginTranscript.logger)
            try await client.login(credentials)
            #expect(!client.utf8Enabled)
            #expect(client.mailboxName(fromWire: "Entw&APw-rfe") == "Entwürfe")
            _ = try await client.select(client.wireName("Entwürfe"))
            await client.close()
        }
    }

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
