import Logging
@testable import MailTransport
import SASL
import Testing

/// POP3 openings against a scripted server: greeting, CAPA, STLS and the checks around it, AUTH,
/// USER/PASS, APOP and RFC 6856's UTF8.
@Suite(.timeLimit(.minutes(1))) struct POP3LoginTests {
    static let transcripts: [LoginTranscript] = [
        LoginTranscript(name: "greeting, CAPA, AUTH PLAIN", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL PLAIN LOGIN"), .server("USER"), .server("."),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK logged in"),
        ]),
        LoginTranscript(name: "USER and PASS without SASL", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("."),
            .client("USER jean"),
            .server("+OK"),
            .client("PASS s3cret"),
            .server("+OK logged in"),
        ]),
        LoginTranscript(name: "UTF8 before a non-ASCII login (RFC 6856)", credentials: Credentials(user: "jérôme", password: "s3cret"),
                        lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("UTF8"), .server("SASL PLAIN"), .server("."),
            .client("UTF8"),
            .server("+OK UTF8 enabled"),
            .client("AUTH PLAIN AGrDqXLDtG1lAHMzY3JldA=="),
            .server("+OK logged in"),
        ]),
        LoginTranscript(name: "STLS required, not in CAPA", tls: .startTLS, lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("SASL PLAIN"), .server("."),
        ], error: { POP3Error.startTLSNotOffered(server: $0) }),
        LoginTranscript(name: "bytes right after STLS's +OK", tls: .startTLS, lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("STLS"), .server("USER"), .server("."),
            .client("STLS"),
            .server("+OK Begin TLS negotiation now"),
            .server("+OK injected"),
        ], error: { TransportError.plaintextAfterStartTLS(endpoint: $0) }),
        LoginTranscript(name: "a refused AUTH", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL PLAIN"), .server("."),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("-ERR [AUTH] Authentication failed."),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "PLAIN", answer: "-ERR [AUTH] Authentication failed.")],
                         ending: .refused, notTried: ["USER/PASS"])
        }),
        LoginTranscript(name: "a refused PASS", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("."),
            .client("USER jean"),
            .server("+OK"),
            .client("PASS s3cret"),
            .server("-ERR [SYS/TEMP] try later"),
        ], error: { POP3Error.authenticationFailed(server: $0, user: "jean", code: "SYS/TEMP", text: "try later") }),
        LoginTranscript(name: "a challenge the mechanism cannot answer ends the login, nothing sent", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL PLAIN"), .server("."),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+ bW9yZQ=="),
        ], error: { _ in SASLError.unexpectedChallenge("more") }),
        LoginTranscript(name: "a token and no mechanism for it", credentials: Credentials(user: "me", oauthToken: "tok"),
                        lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL PLAIN"), .server("USER"), .server("."),
        ], error: {
            POP3Error.authenticationFailed(server: $0, user: "me", code: nil,
                                           text: "no login method in common (the server offers: SASL PLAIN, USER)")
        }),
    ]

    /// GNU Mailutils' pop3d offers every GNU SASL mechanism (issue 19); Courier's offers UTF8 and
    /// serves a notice in place of each message whose header holds UTF-8 to a client that did not
    /// send it (issue 19).
    static let fallbacks: [LoginTranscript] = [
        LoginTranscript(name: "Mailutils: SCRAM-SHA-256 refused, then PLAIN lets jean in", lines: [
            .server("+OK POP3 Debian GNU Mailutils 3.15"),
            .client("CAPA"),
            .server("+OK Capability list follows"), .server("TOP"), .server("USER"), .server("UIDL"), .server("RESP-CODES"),
            .server("SASL ANONYMOUS CRAM-MD5 DIGEST-MD5 GSSAPI LOGIN NTLM PLAIN SCRAM-SHA-1 SCRAM-SHA-256"), .server("."),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("-ERR [AUTH] Authentication failed"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK opened mailbox for jean"),
        ]),
        LoginTranscript(name: "every way refused, each named with its answer", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("SASL SCRAM-SHA-256 PLAIN LOGIN"), .server("."),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("-ERR [AUTH] Authentication failed"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("-ERR [AUTH] Authentication failed"),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [
                LoginAttempt(method: "SCRAM-SHA-256", answer: "-ERR [AUTH] Authentication failed"),
                LoginAttempt(method: "PLAIN", answer: "-ERR [AUTH] Authentication failed"),
            ], ending: .refused, notTried: ["LOGIN", "USER/PASS"])
        }),
        LoginTranscript(name: "[SYS/TEMP] is temporary: nothing else is tried", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("SASL SCRAM-SHA-256 PLAIN"), .server("."),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("-ERR [SYS/TEMP] Temporary authentication failure"),
        ], error: { POP3Error.authenticationFailed(server: $0, user: "jean", code: "SYS/TEMP", text: "Temporary authentication failure") }),
        LoginTranscript(name: "a server that closes after a refusal ends the login", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL SCRAM-SHA-256 PLAIN"), .server("."),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("-ERR [AUTH] Authentication failed"),
            .serverCloses,
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [
                LoginAttempt(method: "SCRAM-SHA-256", answer: "-ERR [AUTH] Authentication failed"),
                LoginAttempt(method: "PLAIN", answer: "the server closed the connection"),
            ], ending: .closed)
        }),
        LoginTranscript(name: "a wrong SCRAM server signature ends the login: PLAIN is not tried", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("SASL SCRAM-SHA-256 PLAIN"), .server("."),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .serverAnswering(LoginTranscript.scramServerFirst("+ ")),
            .clientStarting(LoginTranscript.scramClientFinal),
            .server("+ dj1BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBPQ=="),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "SCRAM-SHA-256", answer: "a server signature that does not match")],
                         ending: .serverUnverified)
        }),
        LoginTranscript(name: "auth_mechanisms = [\"APOP\"]: APOP though USER and SASL are offered", credentials: Credentials(user: "mrose", password: "tanstaaf"),
                        loginMethods: [.apop], lines: [
            .server("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
            .client("CAPA"),
            .server("+OK"), .server("USER"), .server("SASL PLAIN"), .server("."),
            .client("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            .server("+OK maildrop has 1 message (369 octets)"),
        ]),
        LoginTranscript(name: "Courier: UTF8 whenever CAPA offers it, before the login (RFC 6856)", lines: [
            .server("+OK Hello there."),
            .client("CAPA"),
            .server("+OK Here's what I can do:"), .server("TOP"), .server("USER"), .server("LOGIN-DELAY 10"), .server("PIPELINING"),
            .server("UIDL"), .server("UTF8 USER"), .server("IMPLEMENTATION Courier Mail Server"), .server("SASL PLAIN LOGIN"), .server("."),
            .client("UTF8"),
            .server("+OK UTF8 enabled"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK logged in."),
        ]),
        LoginTranscript(name: "UTF8 refused before the login is asked again after it", lines: [
            .server("+OK POP3 ready"),
            .client("CAPA"),
            .server("+OK"), .server("UTF8"), .server("SASL PLAIN"), .server("."),
            .client("UTF8"),
            .server("-ERR not now"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK logged in"),
            .client("UTF8"),
            .server("+OK UTF8 enabled"),
        ]),
    ]

    @Test(arguments: fallbacks) func fallsBack(_ transcript: LoginTranscript) async throws {
        try await opens(transcript)
    }

    /// With UTF8 enabled, a message whose header holds UTF-8 comes as it is: Courier serves it so
    /// only then (without, a "Cannot display Unicode content" notice stands in its place).
    @Test func utf8IsEnabledBeforeTheMessagesAreRead() async throws {
        let message = "Subject: Grüße aus Köln\r\nFrom: jürgen@example.de\r\n\r\nHallo\r\n"
        let transcript = LoginTranscript(name: "Courier RETR", lines: [
            .server("+OK Hello there."),
            .client("CAPA"),
            .server("+OK"), .server("UIDL"), .server("UTF8 USER"), .server("SASL PLAIN"), .server("."),
            .client("UTF8"),
            .server("+OK UTF8 enabled"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("+OK logged in."),
            .client("RETR 1"),
            .server("+OK \(message.utf8.count) octets follow."),
            .server("Subject: Grüße aus Köln"), .server("From: jürgen@example.de"), .server(""), .server("Hallo"), .server("."),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await POP3Client.open(endpoint, credentials: credentials, logger: LoginTranscript.logger)
            #expect(client.utf8Enabled)
            var bytes: [UInt8] = []
            try await client.retrieve(1) { bytes += $0.readableBytesView }
            #expect(String(decoding: bytes, as: UTF8.self) == message)
            await client.close()
        }
    }

    @Test(arguments: transcripts) func opens(_ transcript: LoginTranscript) async throws {
        try await transcript.play { endpoint, credentials in
            let client = try await POP3Client.open(endpoint, credentials: credentials, logger: LoginTranscript.logger)
            await client.close()
        }
    }

    /// RFC 1939 §7's example: a server without CAPA and USER, with a timestamp in its greeting.
    @Test func apopWhenTheGreetingHasATimestamp() async throws {
        let transcript = LoginTranscript(name: "APOP", credentials: Credentials(user: "mrose", password: "tanstaaf"), lines: [
            .server("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
            .client("CAPA"),
            .server("-ERR unknown command"),
            .client("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            .server("+OK maildrop has 1 message (369 octets)"),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await POP3Client.open(endpoint, credentials: credentials, logger: LoginTranscript.logger)
            #expect(client.capabilities == [])
            await client.close()
        }
    }
}
