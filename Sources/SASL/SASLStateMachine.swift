/// One SASL login, sans I/O: it picks the mechanism from those the server offers, answers the
/// server's challenges, and judges the outcome. The protocol client only carries its actions:
/// IMAP as AUTHENTICATE and `+` continuations, POP3 and SMTP as AUTH and `+ ` / `334` challenges.
///
/// ```
/// C: AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9ck9w…   ← receivedMechanisms(_:initialResponseInCommand:)
/// S: 334 cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodl…     → receivedChallenge(_:) gives .sendResponse
/// C: Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8l…
/// S: 334 dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVa…   → receivedChallenge(_:) checks the server, .sendResponse([])
/// C:
/// S: 235 2.7.0 Authentication successful        → receivedOutcome(.success) gives .succeeded
/// ```
/// - SeeAlso: RFC 4422 §5 (the exchange), RFC 4959 (IMAP SASL-IR), RFC 5034, RFC 4954
public struct SASLStateMachine: Sendable {
    /// What the protocol client does next.
    public enum Action: Sendable, Equatable {
        /// Send the command that starts the exchange; `initialResponse` rides in it when not nil.
        case sendCommand(mechanism: SASLMechanism, initialResponse: [UInt8]?)
        /// Send this response (base64-encoded on the wire) to the last challenge.
        case sendResponse([UInt8])
        /// The client cannot answer: cancel the exchange, and fail the login.
        case abort(SASLError)
        /// The server accepted, and proved what the mechanism asks of it.
        case succeeded
        /// The server refused.
        case refused
        /// The server accepted without proving it knows the password (SCRAM's signature never
        /// came): a server that may not be the one the user trusts.
        case serverUnverified
        /// No mechanism in common: the protocol's own login (IMAP LOGIN, POP3 USER/PASS) or none.
        case noCommonMechanism
    }

    /// How the server ended the exchange.
    public enum Outcome: Sendable, Equatable {
        case success
        case failure
    }

    enum State: Sendable {
        case choosing
        /// `pendingInitialResponse`: the protocol could not send it in the command, so it
        /// answers the server's first (empty) challenge.
        case exchanging(SASLClient, pendingInitialResponse: [UInt8]?)
        case ended
    }

    private let credentials: Credentials
    private let nonce: String?
    private var state = State.choosing

    /// `nonce` is for tests (a SCRAM exchange with a known nonce); by default it is random.
    public init(credentials: Credentials, nonce: String? = nil) {
        self.credentials = credentials
        self.nonce = nonce
    }

    /// The mechanism chosen, once it is.
    public var mechanism: SASLMechanism? {
        if case let .exchanging(client, _) = state { return client.mechanism }
        return nil
    }

    /// Whether the next challenge is only the server's go-ahead for the initial response, whose
    /// text is not looked at.
    public var answersNextChallengeWithInitialResponse: Bool {
        if case .exchanging(_, _?) = state { return true }
        return false
    }

    /// The server offers `offered` (mechanism names, any case): the strongest one for the
    /// credentials starts the exchange. `initialResponseInCommand` is whether the protocol takes
    /// an initial response in its command (POP3 and SMTP always; IMAP with SASL-IR).
    public mutating func receivedMechanisms(_ offered: [String], initialResponseInCommand: Bool) -> Action {
        guard case .choosing = state else { preconditionFailure("mechanisms offered twice in one SASL exchange") }
        guard let mechanism = SASLMechanism.strongest(among: offered, for: credentials.kind) else {
            state = .ended
            return .noCommonMechanism
        }
        return chose(mechanism, initialResponseInCommand: initialResponseInCommand)
    }

    /// Starts the exchange with `mechanism`, chosen by the caller.
    public mutating func chose(_ mechanism: SASLMechanism, initialResponseInCommand: Bool) -> Action {
        guard case .choosing = state else { preconditionFailure("a SASL mechanism chosen twice") }
        var client = SASLClient(mechanism: mechanism, credentials: credentials, nonce: nonce)
        let initial = client.initialResponse()
        if initialResponseInCommand || initial == nil {
            state = .exchanging(client, pendingInitialResponse: nil)
            return .sendCommand(mechanism: mechanism, initialResponse: initial)
        }
        state = .exchanging(client, pendingInitialResponse: initial)
        return .sendCommand(mechanism: mechanism, initialResponse: nil)
    }

    /// The server sent a challenge (base64-decoded).
    public mutating func receivedChallenge(_ challenge: [UInt8]) -> Action {
        guard case .exchanging(var client, let pending) = state else {
            preconditionFailure("a SASL challenge outside an exchange")
        }
        if let pending {
            state = .exchanging(client, pendingInitialResponse: nil)
            return .sendResponse(pending)
        }
        do {
            let answer = try client.respond(to: challenge)
            state = .exchanging(client, pendingInitialResponse: nil)
            return .sendResponse(answer)
        } catch {
            state = .ended
            return .abort(error)
        }
    }

    /// The server ended the exchange.
    public mutating func receivedOutcome(_ outcome: Outcome) -> Action {
        guard case let .exchanging(client, _) = state else { preconditionFailure("a SASL outcome outside an exchange") }
        state = .ended
        switch outcome {
        case .failure: return .refused
        case .success: return client.awaitingServerFinal ? .serverUnverified : .succeeded
        }
    }
}
