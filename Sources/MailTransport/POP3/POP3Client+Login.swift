import Crypto
import Foundation
import POP3Core
import SASL

extension POP3Client: OpeningDialect {
    var unparsedByteCount: Int { buffer.readableBytes }
    var knowsCapabilities: Bool { !capabilities.isEmpty }
    var offersStartTLS: Bool { has("STLS") }
    var startTLSNotOffered: any Error { POP3Error.startTLSNotOffered(server: endpoint.description) }

    /// `+OK`, kept for APOP's timestamp.
    func readGreeting() async throws {
        greeting = try await status(expect: .single, command: "greeting")
    }

    func askCapabilities() async throws {
        try await refreshCapabilities()
    }

    /// - SeeAlso: RFC 2595 §4
    func sendStartTLS() async throws {
        _ = try await simple("STLS")
    }

    func forgetCapabilities() {
        capabilities = []
    }

    /// SASL (RFC 5034) when a mechanism is in common, else USER/PASS, else APOP; a server's -ERR
    /// becomes `POP3Error.authenticationFailed`.
    func logIn(_ credentials: Credentials) async throws {
        // RFC 6856: non-ASCII user names and passwords go as UTF-8 once UTF8 is enabled.
        if has("UTF8") && (credentials.user + credentials.secret).utf8.contains(where: { $0 >= 0x80 }) {
            _ = try await simple("UTF8")
        }
        do {
            try await logInPreferringSASL(credentials)
        } catch let POP3Error.commandFailed(server, _, code, text) {
            throw POP3Error.authenticationFailed(server: server, user: credentials.user, code: code, text: text)
        }
    }
}

/// `AUTH mechanism initial-response`, `+ challenge` lines, and USER/PASS or APOP without SASL.
/// - SeeAlso: RFC 5034, RFC 1939 §7
extension POP3Client: SASLDialect {
    var offeredMechanisms: [String] {
        capabilities.first { $0.uppercased().hasPrefix("SASL ") }.map { $0.split(separator: " ").dropFirst().map { $0.uppercased() } } ?? []
    }

    var sendsInitialResponseInCommand: Bool { true }

    func sendAuthenticationCommand(_ mechanism: SASLMechanism, initialResponse: [UInt8]?) async throws {
        let command = "AUTH \(mechanism.rawValue)" + (initialResponse.map { " " + (Data($0).base64EncodedString().isEmpty ? "=" : Data($0).base64EncodedString()) } ?? "")
        try await send(command, redacted: "AUTH \(mechanism.rawValue) <redacted>")
    }

    func readServerStep(user: String) async throws -> SASLServerStep {
        parser.expect(.sasl)
        switch try await nextEvent() {
        case .ok:
            return .succeeded
        case let .err(code, text):
            return .refused(POP3Error.authenticationFailed(server: endpoint.description, user: user, code: code, text: text))
        case let .challenge(text):
            return .challenge(text)
        default:
            throw POP3Error.protocolViolation(server: endpoint.description, detail: "unexpected reply during AUTH")
        }
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

    func unverifiedServer(user: String) -> (any Error)? {
        POP3Error.authenticationFailed(server: endpoint.description, user: user, code: nil,
                                       text: "the server did not prove it knows the password")
    }

    /// USER/PASS when the server offers USER or has no APOP timestamp in its greeting, else APOP.
    func logInWithoutSASL(_ credentials: Credentials) async throws {
        if credentials.kind == .password && (has("USER") || apopTimestamp(inGreeting: greeting) == nil) {
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
    }
}
