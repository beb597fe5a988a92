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
        ], error: { POP3Error.authenticationFailed(server: $0, user: "jean", code: "AUTH", text: "Authentication failed.") }),
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
