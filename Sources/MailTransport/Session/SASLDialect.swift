import SASL

/// The server's side of one SASL step, as a protocol reads it.
enum SASLServerStep {
    /// A challenge (IMAP `+ …`, POP3 `+ …`, SMTP `334 …`), its text still base64.
    case challenge(String)
    /// The command succeeded.
    case succeeded
    /// The server refused; the error says so in the protocol's terms.
    case refused(any Error)
}

/// How one protocol carries a SASL exchange (IMAP AUTHENTICATE, POP3 and SMTP AUTH), and how it
/// logs in without one. `logInPreferringSASL` and `authenticate` run the exchange as
/// `SASLStateMachine` says.
protocol SASLDialect: AnyObject {
    /// The mechanism names the server offers.
    var offeredMechanisms: [String] { get }
    /// Whether an initial response may ride in the command (IMAP: SASL-IR; POP3 and SMTP: always).
    var sendsInitialResponseInCommand: Bool { get }

    func sendAuthenticationCommand(_ mechanism: SASLMechanism, initialResponse: [UInt8]?) async throws
    /// Reads the server's next step; replies that have no place in an exchange throw.
    func readServerStep(user: String) async throws -> SASLServerStep
    /// A challenge's bytes from its base64 text.
    func challengeBytes(_ text: String) throws -> [UInt8]
    func sendResponse(_ response: [UInt8]) async throws
    /// Ends an exchange the client cannot answer, and returns the error the login fails with.
    func cancelExchange(_ error: SASLError, user: String) async throws -> any Error
    /// The error for a server that accepted without proving it knows the password, or nil when
    /// the protocol takes the acceptance.
    func unverifiedServer(user: String) -> (any Error)?
    /// Logs in without SASL (IMAP LOGIN, POP3 USER/PASS or APOP), or throws the protocol's error
    /// when there is no way in common.
    func logInWithoutSASL(_ credentials: Credentials) async throws
}

extension SASLDialect {
    /// Logs in with the strongest SASL mechanism both sides have (`SASLMechanism.strongest`), or
    /// else the protocol's own way.
    func logInPreferringSASL(_ credentials: Credentials) async throws {
        var sasl = SASLStateMachine(credentials: credentials)
        let first = sasl.receivedMechanisms(offeredMechanisms, initialResponseInCommand: sendsInitialResponseInCommand)
        guard first != .noCommonMechanism else { return try await logInWithoutSASL(credentials) }
        try await exchange(&sasl, from: first, user: credentials.user)
    }

    /// A SASL exchange with `mechanism`.
    func authenticate(with mechanism: SASLMechanism, _ credentials: Credentials) async throws {
        var sasl = SASLStateMachine(credentials: credentials)
        let first = sasl.chose(mechanism, initialResponseInCommand: sendsInitialResponseInCommand)
        try await exchange(&sasl, from: first, user: credentials.user)
    }

    private func exchange(_ sasl: inout SASLStateMachine, from first: SASLStateMachine.Action, user: String) async throws {
        var action = first
        while true {
            switch action {
            case let .sendCommand(mechanism, initial):
                try await sendAuthenticationCommand(mechanism, initialResponse: initial)
            case let .sendResponse(response):
                try await sendResponse(response)
            case let .abort(error):
                throw try await cancelExchange(error, user: user)
            case .succeeded:
                return
            case .serverUnverified:
                if let error = unverifiedServer(user: user) { throw error }
                return
            case .refused, .noCommonMechanism:
                preconditionFailure("\(action) ends an exchange before it is carried on")
            }
            switch try await readServerStep(user: user) {
            case let .challenge(text):
                let bytes = sasl.answersNextChallengeWithInitialResponse ? [] : try challengeBytes(text)
                action = sasl.receivedChallenge(bytes)
            case .succeeded:
                action = sasl.receivedOutcome(.success)
            case let .refused(error):
                _ = sasl.receivedOutcome(.failure)
                throw error
            }
        }
    }
}
