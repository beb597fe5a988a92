import Foundation
import IMAPCore
import SASL

/// Logging in: each way both sides have in turn (AUTHENTICATE, with SASL-IR when offered, then
/// LOGIN), as `LoginStateMachine` says; then `ENABLE UTF8=ACCEPT` when offered.
/// - SeeAlso: RFC 3501 §6.2, RFC 4959 (SASL-IR), RFC 6855
extension IMAPClient {
    /// Logs in (after `connect`, which started TLS where the endpoint asks for it), trying the
    /// endpoint's `loginMethods` or else every way both sides have, strongest first.
    public func login(_ credentials: Credentials) async throws {
        try await logIn(credentials, exposingAllowed: true)
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

    func logIn(_ credentials: Credentials, exposingAllowed: Bool) async throws {
        try await logIn(credentials, choosing: endpoint.loginMethods, exposingAllowed: exposingAllowed)
        // Servers usually send capabilities with the OK; if not, ask (they change after login).
        if !has("IMAP4rev1") && !has("IMAP4rev2") { try await refreshCapabilities() }
        try await enableUTF8()
    }
}

extension IMAPClient: SASLDialect {
    var offeredMechanisms: [String] {
        capabilities.filter { $0.uppercased().hasPrefix("AUTH=") }.map { String($0.dropFirst(5)).uppercased() }
    }

    var sendsInitialResponseInCommand: Bool { has("SASL-IR") }

    /// LOGIN, unless the server says LOGINDISABLED (it does before STARTTLS).
    var ownLoginMethods: [LoginMethod] { has("LOGINDISABLED") ? [] : [.command] }

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
                guard t.status == .ok else { return .refused(refusal(t, command: "AUTHENTICATE", user: user)) }
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

    func logIn(with method: LoginMethod, _ credentials: Credentials) async throws -> ServerRefusal? {
        precondition(method == .command, "IMAP's own login is LOGIN")
        do {
            _ = try await run(.login(user: credentials.user, password: credentials.secret))
            return nil
        } catch let IMAPError.commandFailed(_, _, status, code, text, _) where status == .no || status == .bad {
            return refusal(TaggedResponse(tag: "", status: status, code: code, text: text), command: "LOGIN", user: credentials.user)
        }
    }

    func noCommonMethod(_ credentials: Credentials) -> any Error {
        IMAPError.noUsableMechanism(server: endpoint.description, offered: capabilities)
    }

    /// NO is a refusal of the credentials, BAD of the way (a mechanism the server does not take),
    /// `NO [UNAVAILABLE]` the server's trouble (RFC 5530): temporary, a `commandFailed`.
    func refusal(_ t: TaggedResponse, command: String, user: String) -> ServerRefusal {
        let answer = "\(t.status.rawValue)\(t.code.map { " [\(IMAPError.describe($0))]" } ?? "") \(t.text)"
        if t.status == .no, case .other(name: "UNAVAILABLE", _)? = t.code {
            return ServerRefusal(kind: .temporary, answer: answer,
                                 error: IMAPError.commandFailed(server: endpoint.description, command: command, status: t.status,
                                                               code: t.code, text: t.text, mailbox: nil))
        }
        return ServerRefusal(kind: t.status == .bad ? .method : .credentials, answer: answer,
                             error: IMAPError.authenticationFailed(server: endpoint.description, user: user, text: t.text))
    }
}
