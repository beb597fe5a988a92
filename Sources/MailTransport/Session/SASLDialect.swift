import SASL

/// The server's side of one SASL step, as a protocol reads it.
enum SASLServerStep {
    /// A challenge (IMAP `+ …`, POP3 `+ …`, SMTP `334 …`), its text still base64.
    case challenge(String)
    /// The command succeeded.
    case succeeded
    /// The server ended the exchange without letting the client in.
    case refused(ServerRefusal)
}

/// A server's refusal of one way of logging in: what it says (`LoginStateMachine.Refusal`), the
/// server's words, and the protocol's error, thrown as it is when the refusal is temporary.
struct ServerRefusal {
    var kind: LoginStateMachine.Refusal
    var answer: String
    var error: any Error
}

/// How one attempt ended.
enum AttemptOutcome {
    case loggedIn
    case refused(ServerRefusal)
    /// The server did not give the proof the mechanism asks of it (SCRAM's signature): none, or a
    /// wrong one. The text says which.
    case unverified(String)
}

/// How one protocol carries a SASL exchange (IMAP AUTHENTICATE, POP3 and SMTP AUTH), and its own
/// ways in without one. `logIn(_:choosing:exposingAllowed:)` tries them as `LoginStateMachine`
/// says, each SASL exchange as `SASLStateMachine` says.
protocol SASLDialect: AnyObject {
    var endpoint: ServerEndpoint { get }
    /// The mechanism names the server offers.
    var offeredMechanisms: [String] { get }
    /// Whether an initial response may ride in the command (IMAP: SASL-IR; POP3 and SMTP: always).
    var sendsInitialResponseInCommand: Bool { get }
    /// The protocol's own ways in that the server takes now, in the protocol's order.
    var ownLoginMethods: [LoginMethod] { get }

    func sendAuthenticationCommand(_ mechanism: SASLMechanism, initialResponse: [UInt8]?) async throws
    /// Reads the server's next step; replies that have no place in an exchange throw.
    func readServerStep(user: String) async throws -> SASLServerStep
    /// A challenge's bytes from its base64 text.
    func challengeBytes(_ text: String) throws -> [UInt8]
    func sendResponse(_ response: [UInt8]) async throws
    /// Ends an exchange the client cannot answer, and returns the error the login fails with.
    func cancelExchange(_ error: SASLError, user: String) async throws -> any Error
    /// Logs in with one of `ownLoginMethods`: nil when let in, else the server's refusal.
    func logIn(with method: LoginMethod, _ credentials: Credentials) async throws -> ServerRefusal?
    /// The error for a server with no way in that suits the credentials and the connection.
    func noCommonMethod(_ credentials: Credentials) -> any Error
    /// A method as the protocol's users know it (`LOGIN command`, `USER/PASS`).
    func name(of method: LoginMethod) -> String
}

extension SASLDialect {
    func name(of method: LoginMethod) -> String {
        switch method {
        case let .sasl(m): return m.rawValue
        case .command: return "LOGIN command"
        case .apop: return "APOP"
        }
    }

    /// Logs in, trying each way both sides have in turn (see `LoginStateMachine`): `chosen` is
    /// the user's choice and order, nil for all; `exposingAllowed` whether a secret may cross as
    /// it is. Throws `LoginFailure` when every way was refused, the protocol's error when the
    /// server is busy.
    func logIn(_ credentials: Credentials, choosing chosen: [LoginMethod]?, exposingAllowed: Bool) async throws {
        var login = LoginStateMachine(offered: offeredMechanisms, own: ownLoginMethods, credentials: credentials.kind,
                                      chosen: chosen, exposingAllowed: exposingAllowed)
        var action = login.start()
        var lastRefusal: ServerRefusal?
        while true {
            switch action {
            case let .attempt(method):
                let outcome: AttemptOutcome
                do {
                    switch method {
                    case let .sasl(mechanism):
                        outcome = try await attempt(mechanism, credentials)
                    case .command, .apop:
                        outcome = try await logIn(with: method, credentials).map(AttemptOutcome.refused) ?? .loggedIn
                    }
                } catch TransportError.closedByPeer(let server) {
                    guard let ending = login.connectionClosed() else { throw TransportError.closedByPeer(endpoint: server) }
                    action = ending
                    continue
                }
                switch outcome {
                case .loggedIn:
                    action = login.attemptSucceeded()
                case let .refused(refusal):
                    lastRefusal = refusal
                    action = login.attemptRefused(refusal.kind, answer: refusal.answer)
                case let .unverified(answer):
                    action = login.serverUnverified(answer: answer)
                }
            case .loggedIn:
                return
            case let .fail(ending):
                throw LoginFailure(server: endpoint.description, user: credentials.user,
                                   attempts: login.attempts.map { LoginAttempt(method: name(of: $0.method), answer: $0.answer) },
                                   ending: ending, notTried: login.notTried.map { name(of: $0) })
            case .stopTemporarily:
                throw lastRefusal!.error
            case .noCommonMethod:
                throw noCommonMethod(credentials)
            }
        }
    }

    /// One SASL exchange with `mechanism`, whether the server offers it or not; a refusal throws
    /// the protocol's error.
    func authenticate(with mechanism: SASLMechanism, _ credentials: Credentials) async throws {
        switch try await attempt(mechanism, credentials) {
        case .loggedIn: return
        case let .refused(refusal): throw refusal.error
        case let .unverified(answer):
            throw LoginFailure(server: endpoint.description, user: credentials.user,
                               attempts: [LoginAttempt(method: mechanism.rawValue, answer: answer)], ending: .serverUnverified)
        }
    }

    private func attempt(_ mechanism: SASLMechanism, _ credentials: Credentials) async throws -> AttemptOutcome {
        var sasl = SASLStateMachine(credentials: credentials)
        var action = sasl.chose(mechanism, initialResponseInCommand: sendsInitialResponseInCommand)
        while true {
            switch action {
            case let .sendCommand(mechanism, initial):
                try await sendAuthenticationCommand(mechanism, initialResponse: initial)
            case let .sendResponse(response):
                try await sendResponse(response)
            case .abort(.serverSignatureMismatch):
                // A server that does not know the password is given nothing else to judge.
                _ = try await cancelExchange(.serverSignatureMismatch, user: credentials.user)
                return .unverified("a server signature that does not match")
            case let .abort(error):
                throw try await cancelExchange(error, user: credentials.user)
            case .succeeded:
                return .loggedIn
            case .serverUnverified:
                return .unverified("accepted with no server signature")
            case .refused, .noCommonMechanism:
                preconditionFailure("\(action) ends an exchange before it is carried on")
            }
            switch try await readServerStep(user: credentials.user) {
            case let .challenge(text):
                let bytes = sasl.answersNextChallengeWithInitialResponse ? [] : try challengeBytes(text)
                action = sasl.receivedChallenge(bytes)
            case .succeeded:
                action = sasl.receivedOutcome(.success)
            case let .refused(refusal):
                _ = sasl.receivedOutcome(.failure)
                return .refused(refusal)
            }
        }
    }
}
