import SASL

/// One login, sans I/O: which ways to try and in what order, and what a refusal of one means for
/// the next. Each way is tried in turn (a SASL exchange is `SASLStateMachine`'s, the protocol's
/// own command the dialect's); only a refusal of the last is the login's refusal.
///
/// ```
/// C: a1 AUTHENTICATE SCRAM-SHA-256 biws…        start()                        → .attempt(SCRAM-SHA-256)
/// S: a1 NO [AUTHENTICATIONFAILED] failed         attemptRefused(.credentials, …) → .attempt(PLAIN)
/// C: a2 AUTHENTICATE PLAIN AGplYW4…
/// S: a2 OK logged in                             attemptSucceeded()             → .loggedIn
/// ```
///
/// Rules, each for a reason:
/// - The order is the user's (`auth_mechanisms`) or else the strongest first (SCRAM-SHA-256,
///   PLAIN, CRAM-MD5, LOGIN, then the protocol's own commands): the user knows the account.
/// - A way that hands the secret over as it is (PLAIN, LOGIN, USER/PASS, XOAUTH2…) is never tried
///   where the connection does not allow that: its secret would cross in clear.
/// - After the server refuses the secret handed over as it is, no other way that hands over the
///   same secret as it is is tried: the server checked that very secret, and every further failure
///   counts against the account (servers close after a few, fail2ban bans). A way that proves the
///   secret instead (SCRAM, CRAM-MD5, APOP) needs a stored secret the account may lack, which is
///   why its refusal says nothing of the others (GNU Mailutils offers SCRAM for accounts it
///   cannot SCRAM).
/// - A way the server does not take at all (IMAP BAD, SMTP 504/534) says nothing of the secret.
/// - A temporary failure (the server is busy) ends the login at once: the next way would meet the
///   same server.
/// - The server closing the connection ends it too: there is no next attempt on this connection.
struct LoginStateMachine: Sendable {
    /// What the client does next.
    enum Action: Sendable, Equatable {
        /// Try this way: a SASL exchange, or the protocol's own command.
        case attempt(LoginMethod)
        case loggedIn
        /// No way is left: the login fails; `attempts` and `notTried` say what happened.
        case fail(LoginFailure.Ending)
        /// The server is busy: stop now, with its answer as a temporary failure.
        case stopTemporarily
        /// Nothing the server offers suits the credentials, the connection and the user's choice.
        case noCommonMethod
    }

    /// What a refusal says.
    enum Refusal: Sendable, Equatable {
        /// The server judged the credentials (IMAP NO, POP3 -ERR, SMTP 535).
        case credentials
        /// The server does not take this way at all (IMAP BAD, SMTP 504 or 534).
        case method
        /// The server cannot check now (IMAP `NO [UNAVAILABLE]`, POP3 `[SYS/TEMP]`, SMTP 4xx).
        case temporary
    }

    enum State: Sendable, Equatable {
        case notStarted
        case attempting(LoginMethod)
        case ended
    }

    private(set) var state = State.notStarted
    /// The ways still to try, in order.
    private(set) var remaining: [LoginMethod]
    /// Each way tried and the server's answer, in order.
    private(set) var attempts: [(method: LoginMethod, answer: String)] = []
    /// Ways left out because a refusal already judged the secret they would hand over.
    private(set) var notTried: [LoginMethod] = []

    /// - Parameters:
    ///   - offered: the SASL mechanism names the server offers (any case).
    ///   - own: the protocol's own ways the server takes now (IMAP LOGIN unless LOGINDISABLED,
    ///     POP3 USER/PASS, APOP), in the protocol's order.
    ///   - chosen: the user's choice and order (`auth_mechanisms`), or nil for all, strongest first.
    ///   - exposingAllowed: whether a secret may cross as it is (TLS is up, or the user asked for
    ///     plain text).
    init(offered: [String], own: [LoginMethod], credentials kind: Credentials.Kind, chosen: [LoginMethod]?,
         exposingAllowed: Bool) {
        let names = Set(offered.map { $0.uppercased() })
        let available = SASLMechanism.preference(for: kind).filter { names.contains($0.rawValue) }.map(LoginMethod.sasl)
            + own.filter { $0.carries(kind) }
        let ordered = chosen.map { $0.filter(available.contains) } ?? available
        remaining = ordered.filter { exposingAllowed || !$0.exposesSecret }
    }

    /// The first way to try.
    mutating func start() -> Action {
        precondition(state == .notStarted, "a login started twice")
        guard !remaining.isEmpty else {
            state = .ended
            return .noCommonMethod
        }
        return next(otherwise: .noCommonMethod)
    }

    /// The server let the client in.
    mutating func attemptSucceeded() -> Action {
        guard case .attempting = state else { preconditionFailure("a login succeeded outside an attempt") }
        state = .ended
        return .loggedIn
    }

    /// The server refused the way under way; `answer` is its words.
    mutating func attemptRefused(_ refusal: Refusal, answer: String) -> Action {
        guard case let .attempting(method) = state else { preconditionFailure("a refusal outside an attempt") }
        attempts.append((method, answer))
        switch refusal {
        case .temporary:
            state = .ended
            return .stopTemporarily
        case .credentials where method.exposesSecret:
            notTried += remaining.filter(\.exposesSecret)
            remaining.removeAll(where: \.exposesSecret)
        case .credentials, .method:
            break
        }
        return next(otherwise: .fail(.refused))
    }

    /// The server accepted without the proof the mechanism asks of it (SCRAM's signature).
    mutating func serverUnverified(answer: String) -> Action {
        guard case let .attempting(method) = state else { preconditionFailure("an acceptance outside an attempt") }
        attempts.append((method, answer))
        state = .ended
        return .fail(.serverUnverified)
    }

    /// The connection ended during an attempt. After a refusal that ends the login as refused;
    /// before any, nil: nothing was judged, and the connection's error stands.
    mutating func connectionClosed() -> Action? {
        guard case let .attempting(method) = state, !attempts.isEmpty else { return nil }
        attempts.append((method, "the server closed the connection"))
        state = .ended
        return .fail(.closed)
    }

    private mutating func next(otherwise ending: Action) -> Action {
        guard !remaining.isEmpty else {
            state = .ended
            return ending
        }
        let method = remaining.removeFirst()
        state = .attempting(method)
        return .attempt(method)
    }
}
