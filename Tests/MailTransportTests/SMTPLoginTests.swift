import Logging
@testable import MailTransport
import SMTPCore
import Testing

/// SMTP openings against a scripted server: greeting, EHLO (HELO when refused), STARTTLS and the
/// checks around it, and AUTH.
@Suite(.timeLimit(.minutes(1))) struct SMTPLoginTests {
    static let transcripts: [LoginTranscript] = [
        LoginTranscript(name: "greeting, EHLO, AUTH PLAIN", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250-AUTH PLAIN LOGIN"), .server("250 SIZE 1000"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("235 2.7.0 Authentication successful"),
            .client("QUIT"),
            .server("221 2.0.0 Bye"),
        ]),
        LoginTranscript(name: "AUTH LOGIN answers each 334", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH LOGIN"),
            .client("AUTH LOGIN"),
            .server("334 VXNlcm5hbWU6"),
            .client("amVhbg=="),
            .server("334 UGFzc3dvcmQ6"),
            .client("czNjcmV0"),
            .server("235 2.7.0 Authentication successful"),
            .client("QUIT"),
            .server("221 2.0.0 Bye"),
        ]),
        LoginTranscript(name: "STARTTLS required, not in EHLO", tls: .startTLS, lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH PLAIN"),
        ], error: { SMTPError.startTLSNotOffered(server: $0) }),
        LoginTranscript(name: "bytes right after STARTTLS's 220", tls: .startTLS, lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 STARTTLS"),
            .client("STARTTLS"),
            .server("220 2.0.0 Ready to start TLS"),
            .server("250 injected"),
        ], error: { TransportError.plaintextAfterStartTLS(endpoint: $0) }),
        LoginTranscript(name: "a refused AUTH", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH PLAIN"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("535 5.7.8 Error: authentication failed"),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "PLAIN", answer: "535 5.7.8 Error: authentication failed")],
                         ending: .refused)
        }),
        LoginTranscript(name: "no mechanism in common", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH GSSAPI"),
        ], error: { SMTPError.authenticationFailed(server: $0, user: "jean", reply: nil) }),
        LoginTranscript(name: "a refusing greeting", lines: [
            .server("554 5.3.2 not now"),
        ], error: {
            SMTPError.rejected(server: $0, command: "greeting", reply: SMTPReply(code: 554, enhanced: "5.3.2", lines: ["not now"]))
        }),
    ]

    static let fallbacks: [LoginTranscript] = [
        LoginTranscript(name: "SCRAM-SHA-256 refused (535), then PLAIN", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH SCRAM-SHA-256 PLAIN LOGIN"),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("535 5.7.8 Error: authentication failed"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("235 2.7.0 Authentication successful"),
            .client("QUIT"),
            .server("221 2.0.0 Bye"),
        ]),
        LoginTranscript(name: "a mechanism the server does not take (504) says nothing of the password", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH PLAIN LOGIN"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("504 5.5.4 Unrecognized authentication type"),
            .client("AUTH LOGIN"),
            .server("334 VXNlcm5hbWU6"),
            .client("amVhbg=="),
            .server("334 UGFzc3dvcmQ6"),
            .client("czNjcmV0"),
            .server("235 2.7.0 Authentication successful"),
            .client("QUIT"),
            .server("221 2.0.0 Bye"),
        ]),
        LoginTranscript(name: "454 is temporary: nothing else is tried", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH SCRAM-SHA-256 PLAIN"),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("454 4.7.0 Temporary authentication failure"),
        ], error: {
            SMTPError.rejected(server: $0, command: "AUTH",
                               reply: SMTPReply(code: 454, enhanced: "4.7.0", lines: ["Temporary authentication failure"]))
        }),
        LoginTranscript(name: "every way refused, each named with its answer", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH SCRAM-SHA-256 PLAIN LOGIN"),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .server("535 5.7.8 Error: authentication failed"),
            .client("AUTH PLAIN AGplYW4AczNjcmV0"),
            .server("535 5.7.8 Error: authentication failed"),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [
                LoginAttempt(method: "SCRAM-SHA-256", answer: "535 5.7.8 Error: authentication failed"),
                LoginAttempt(method: "PLAIN", answer: "535 5.7.8 Error: authentication failed"),
            ], ending: .refused, notTried: ["LOGIN"])
        }),
        // A 235 right after SCRAM's client-final: the server never proved it knows the password.
        // IMAP and POP3 refused this already; SMTP took it.
        LoginTranscript(name: "a 235 without SCRAM's server signature is refused, and nothing else is tried", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("250-mx.test"), .server("250 AUTH SCRAM-SHA-256 PLAIN"),
            .clientStarting("AUTH SCRAM-SHA-256 " + LoginTranscript.scramClientFirst),
            .serverAnswering(LoginTranscript.scramServerFirst("334 ")),
            .clientStarting(LoginTranscript.scramClientFinal),
            .server("235 2.7.0 Authentication successful"),
        ], error: {
            LoginFailure(server: $0, user: "jean", attempts: [LoginAttempt(method: "SCRAM-SHA-256", answer: "accepted with no server signature")],
                         ending: .serverUnverified)
        }),
    ]

    @Test(arguments: fallbacks) func fallsBack(_ transcript: LoginTranscript) async throws {
        try await opens(transcript)
    }

    @Test(arguments: transcripts) func opens(_ transcript: LoginTranscript) async throws {
        try await transcript.play { endpoint, credentials in
            let client = try await SMTPClient.open(endpoint, credentials: credentials, heloName: "client.test",
                                                   logger: LoginTranscript.logger)
            await client.quit()
        }
    }

    /// Without credentials there is no AUTH; a server that refuses EHLO gets HELO.
    @Test func heloWhenEHLOIsRefusedAndNoLoginWithoutCredentials() async throws {
        let transcript = LoginTranscript(name: "HELO", lines: [
            .server("220 mx.test ESMTP"),
            .client("EHLO client.test"),
            .server("502 5.5.2 Error: command not recognized"),
            .client("HELO client.test"),
            .server("250 mx.test"),
            .client("QUIT"),
            .server("221 2.0.0 Bye"),
        ])
        try await transcript.play { endpoint, credentials in
            let client = try await SMTPClient.open(endpoint, credentials: nil, heloName: "client.test", logger: LoginTranscript.logger)
            #expect(client.extensions.isEmpty)
            await client.quit()
        }
    }
}
