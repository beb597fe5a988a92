import Foundation
import IMAPCore
import SASL

/// Logging in: the strongest SASL mechanism both sides have (AUTHENTICATE, with SASL-IR when
/// offered), else LOGIN, never in plain text unless the endpoint says `.none`.
/// - SeeAlso: RFC 3501 §6.2, RFC 4959 (SASL-IR)
extension IMAPClient {
    /// Logs in with the strongest method both sides support: SCRAM-SHA-256, PLAIN, CRAM-MD5, then
    /// LOGIN (never in plain text unless the endpoint says `.none`).
    public func login(_ credentials: Credentials) async throws {
        do {
            try await logInPreferringSASL(credentials)
        } catch let IMAPError.commandFailed(server, _, status, _, text, _) where status == .no || status == .bad {
            throw IMAPError.authenticationFailed(server: server, user: credentials.user, text: text)
        }
        // Servers usually send capabilities with the OK; if not, ask (they change after login).
        if !has("IMAP4rev1") && !has("IMAP4rev2") { try await refreshCapabilities() }
    }

    /// `AUTHENTICATE` with SASL-IR when offered.
    /// - SeeAlso: RFC 3501 §6.2.2, RFC 4959
    public func authenticate(_ mechanism: SASLMechanism, _ credentials: Credentials) async throws {
        try await authenticate(with: mechanism, credentials)
    }
}

extension IMAPClient: OpeningDialect {
    var unparsedByteCount: Int { buffer.readableBytes }
    var knowsCapabilities: Bool { !capabilities.isEmpty }
    var offersStartTLS: Bool { has("STARTTLS") }
    var startTLSNotOffered: any Error { IMAPError.startTLSNotOffered(server: endpoint.description) }

    /// `* OK [CAPABILITY …] ready`, or `* BYE` from a server that will not serve.
    func readGreeting() async throws {
        let event = try await nextEvent()
        guard case let .untagged(.status(status, code, text)) = event else {
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "no greeting")
        }
        if status == .bye { throw IMAPError.bye(server: endpoint.description, text: text) }
        if case let .capability(caps)? = code { setCapabilities(caps) }
    }

    func askCapabilities() async throws {
        try await refreshCapabilities()
    }

    func sendStartTLS() async throws {
        _ = try await run(.startTLS)
    }

    func forgetCapabilities() {
        capabilities = []
    }

    func logIn(_ credentials: Credentials) async throws {
        try await login(credentials)
    }
}

extension IMAPClient: SASLDialect {
    var offeredMechanisms: [String] {
        capabilities.filter { $0.uppercased().hasPrefix("AUTH=") }.map { String($0.dropFirst(5)).uppercased() }
    }

    var sendsInitialResponseInCommand: Bool { has("SASL-IR") }

    func sendAuthenticationCommand(_ mechanism: SASLMechanism, initialResponse: [UInt8]?) async throws {
        let tag = nextTag()
        authenticationTag = tag
        let command = IMAPCommand.authenticate(mechanism: mechanism.rawValue,
                                               initialResponse: initialResponse.map { Data($0).base64EncodedString() })
        try await send(encoder.encode(tag: tag, command), tag: tag, sensitive: true)
    }

    func readServerStep(user: String) async throws -> SASLServerStep {
        while true {
            let event = try await nextEvent()
            switch event {
            case let .continuation(text):
                return .challenge(text)
            case let .tagged(t) where t.tag == authenticationTag:
                guard t.status == .ok else {
                    return .refused(IMAPError.authenticationFailed(server: endpoint.description, user: user, text: t.text))
                }
                if case let .capability(caps)? = t.code { setCapabilities(caps) }
                return .succeeded
            default:
                try handleUnsolicited(event)
            }
        }
    }

    func challengeBytes(_ text: String) throws -> [UInt8] {
        guard let challenge = Data(base64Encoded: text) ?? (text.isEmpty ? Data() : nil) else {
            throw IMAPError.protocolViolation(server: endpoint.description, detail: "AUTHENTICATE challenge is not base64")
        }
        return Array(challenge)
    }

    func sendResponse(_ response: [UInt8]) async throws {
        trace.client("<redacted SASL response>")
        try await connection.write(Array((Data(response).base64EncodedString() + "\r\n").utf8))
    }

    /// `*` cancels the exchange (RFC 3501 §6.2.2); the server answers it BAD.
    func cancelExchange(_ error: SASLError, user: String) async throws -> any Error {
        try await connection.write(Array("*\r\n".utf8))
        return IMAPError.authenticationFailed(server: endpoint.description, user: user, text: "\(error)")
    }

    func unverifiedServer(user: String) -> (any Error)? {
        IMAPError.authenticationFailed(server: endpoint.description, user: user,
                                       text: "the server did not prove it knows the password (no SCRAM server signature)")
    }

    /// LOGIN, for a password, unless the server says LOGINDISABLED (it does before STARTTLS).
    func logInWithoutSASL(_ credentials: Credentials) async throws {
        guard credentials.kind == .password && !has("LOGINDISABLED") else {
            throw IMAPError.noUsableMechanism(server: endpoint.description, offered: capabilities)
        }
        _ = try await run(.login(user: credentials.user, password: credentials.secret))
    }
}
