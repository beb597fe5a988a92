import Foundation
import SASL
import SMTPCore

extension SMTPClient: OpeningDialect {
    var unparsedByteCount: Int { buffer.readableBytes }
    var knowsCapabilities: Bool { !extensions.isEmpty }
    var offersStartTLS: Bool { extensions["STARTTLS"] != nil }
    var startTLSNotOffered: any Error { SMTPError.startTLSNotOffered(server: endpoint.description) }

    /// `220`, or the refusal of a server that will not serve.
    func readGreeting() async throws {
        let greeting = try await reply()
        guard greeting.code == 220 else { throw SMTPError.rejected(server: endpoint.description, command: "greeting", reply: greeting) }
    }

    /// EHLO, again after STARTTLS (RFC 3207 §4.2).
    func askCapabilities() async throws {
        try await hello(heloName)
    }

    func sendStartTLS() async throws {
        try await command("STARTTLS", expect: 220)
    }

    func forgetCapabilities() {
        extensions = [:]
    }

    func logIn(_ credentials: Credentials, exposingAllowed: Bool) async throws {
        try await logIn(credentials, choosing: endpoint.loginMethods, exposingAllowed: exposingAllowed)
    }
}

/// `AUTH mechanism initial-response` and `334` challenges; there is no login without SASL.
/// - SeeAlso: RFC 4954
extension SMTPClient: SASLDialect {
    var offeredMechanisms: [String] {
        (extensions["AUTH"] ?? "").uppercased().split(separator: " ").map(String.init)
    }

    var sendsInitialResponseInCommand: Bool { true }

    var ownLoginMethods: [LoginMethod] { [] }

    func sendAuthenticationCommand(_ mechanism: SASLMechanism, initialResponse: [UInt8]?) async throws {
        let initial = initialResponse.map { Data($0).base64EncodedString() }
        try await send("AUTH \(mechanism.rawValue)" + (initial.map { " " + ($0.isEmpty ? "=" : $0) } ?? ""),
                       redacted: "AUTH \(mechanism.rawValue) <redacted>")
    }

    func readServerStep(user: String) async throws -> SASLServerStep {
        let r = try await reply()
        switch r.code {
        case 235: return .succeeded
        case 334: return .challenge(r.text)
        default: return .refused(refusal(r, user: user))
        }
    }

    /// 4xx is the server's trouble (454 4.7.0 Temporary authentication failure): temporary, a
    /// `rejected`. 504 (unknown mechanism), 534 (too weak), 538 (needs encryption) and 501 refuse
    /// the way, not the secret (RFC 4954 §6); any other refuses the credentials.
    func refusal(_ r: SMTPReply, user: String) -> ServerRefusal {
        if r.isTransient {
            return ServerRefusal(kind: .temporary, answer: r.description,
                                 error: SMTPError.rejected(server: endpoint.description, command: "AUTH", reply: r))
        }
        return ServerRefusal(kind: [501, 504, 534, 538].contains(r.code) ? .method : .credentials, answer: r.description,
                             error: SMTPError.authenticationFailed(server: endpoint.description, user: user, reply: r))
    }

    func challengeBytes(_ text: String) throws -> [UInt8] {
        Array(Data(base64Encoded: text) ?? Data())
    }

    func sendResponse(_ response: [UInt8]) async throws {
        try await send(Data(response).base64EncodedString(), redacted: "<redacted SASL response>")
    }

    /// Nothing is sent: the login fails with the SASL error, and the connection is closed.
    func cancelExchange(_ error: SASLError, user: String) async throws -> any Error {
        error
    }

    func logIn(with method: LoginMethod, _ credentials: Credentials) async throws -> ServerRefusal? {
        preconditionFailure("SMTP has no login but AUTH")
    }

    func noCommonMethod(_ credentials: Credentials) -> any Error {
        SMTPError.authenticationFailed(server: endpoint.description, user: credentials.user, reply: nil)
    }
}
