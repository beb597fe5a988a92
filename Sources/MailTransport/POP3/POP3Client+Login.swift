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

    /// Each way both sides have in turn (SASL, RFC 5034, then USER/PASS, then APOP), as
    /// `LoginStateMachine` says; UTF8 (RFC 6856) whenever CAPA offers it.
    func logIn(_ credentials: Credentials, exposingAllowed: Bool) async throws {
        // RFC 6856 makes UTF8 a command of the AUTHORIZATION state (and UTF-8 credentials need
        // it first). A server that refuses it then is asked again once logged in, as Courier
        // takes it (Outlook sends it there). Without it a server may serve a generated notice in
        // place of each message whose header holds UTF-8 (Courier does): a stub delivered and
        // the original deleted.
        if has("UTF8") { utf8Enabled = try await enableUTF8() }
        try await logIn(credentials, choosing: endpoint.loginMethods, exposingAllowed: exposingAllowed)
        if has("UTF8") && !utf8Enabled { utf8Enabled = try await enableUTF8() }
    }

    /// `UTF8`: whether the server took it (a refusal leaves the session as it was).
    private func enableUTF8() async throws -> Bool {
        do {
            _ = try await simple("UTF8")
            return true
        } catch POP3Error.commandFailed {
            return false
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

    /// USER/PASS when the server offers USER or has no APOP timestamp in its greeting; APOP when
    /// it has one.
    var ownLoginMethods: [LoginMethod] {
        let stamp = apopTimestamp(inGreeting: greeting)
        return (has("USER") || stamp == nil ? [.command] : []) + (stamp != nil ? [.apop] : [])
    }

    func name(of method: LoginMethod) -> String {
        switch method {
        case let .sasl(m): return m.rawValue
        case .command: return "USER/PASS"
        case .apop: return "APOP"
        }
    }

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
            return .refused(refusal(code: code, text: text, user: user))
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

    func logIn(with method: LoginMethod, _ credentials: Credentials) async throws -> ServerRefusal? {
        do {
            switch method {
            case .command:
                _ = try await simple("USER \(credentials.user)")
                try await send("PASS \(credentials.secret)", redacted: "PASS <redacted>")
                parser.expect(.single)
                _ = try await status(command: "PASS")
            case .apop:
                let stamp = apopTimestamp(inGreeting: greeting) ?? ""
                let digest = Insecure.MD5.hash(data: Array((stamp + credentials.secret).utf8)).map { String(format: "%02x", $0) }.joined()
                try await send("APOP \(credentials.user) \(digest)", redacted: "APOP \(credentials.user) <redacted>")
                parser.expect(.single)
                _ = try await status(command: "APOP")
            case .sasl:
                preconditionFailure("SASL is not POP3's own login")
            }
            return nil
        } catch let POP3Error.commandFailed(_, _, code, text) {
            return refusal(code: code, text: text, user: credentials.user)
        }
    }

    func noCommonMethod(_ credentials: Credentials) -> any Error {
        POP3Error.authenticationFailed(server: endpoint.description, user: credentials.user, code: nil,
                                       text: "no login method in common (the server offers: \(capabilities.joined(separator: ", ")))")
    }

    /// `-ERR [SYS/TEMP]`, `[IN-USE]` and `[LOGIN-DELAY]` are the server's state (RFC 3206, RFC
    /// 2449): temporary. Any other -ERR refuses the credentials; POP3 has no word for a mechanism
    /// it does not take.
    func refusal(code: String?, text: String, user: String) -> ServerRefusal {
        let error = POP3Error.authenticationFailed(server: endpoint.description, user: user, code: code, text: text)
        return ServerRefusal(kind: error.responseCode?.isTemporary == true ? .temporary : .credentials,
                             answer: "-ERR\(code.map { " [\($0)]" } ?? "") \(text)", error: error)
    }
}
