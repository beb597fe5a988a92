/// A login that did not get in, in the same words whatever the protocol: which server and user,
/// each way tried with the server's answer, and how it ended. A temporary failure is not one of
/// these: it is the protocol's own error (IMAP `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`, SMTP 4xx).
public struct LoginFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// How the login ended.
    public enum Ending: Equatable, Sendable {
        /// The last way there was to try was refused.
        case refused
        /// The server closed the connection after a refusal, before the next way could be tried
        /// (some servers allow only so many failures a connection).
        case closed
        /// The server did not prove it knows the password (SCRAM's signature missing or wrong): it
        /// may not be the server the user trusts, so nothing else is tried.
        case serverUnverified
    }

    public var server: String
    public var user: String
    public var attempts: [LoginAttempt]
    public var ending: Ending
    /// Methods that were offered but not tried, because a refusal already judged the secret they
    /// would have handed over.
    public var notTried: [String]

    public init(server: String, user: String, attempts: [LoginAttempt], ending: Ending, notTried: [String] = []) {
        self.server = server
        self.user = user
        self.attempts = attempts
        self.ending = ending
        self.notTried = notTried
    }

    public var description: String {
        let tried = attempts.map(\.description).joined(separator: "; ")
        switch ending {
        case .serverUnverified:
            return "\(server): login as \(user) stopped: the server did not prove it knows the password (\(tried)); "
                + "nothing else was tried, so that no secret goes to a server that may not be the one you trust"
        case .refused, .closed:
            var text = "\(server): login as \(user) refused (tried \(tried))"
            if !notTried.isEmpty {
                text += "; not tried: \(notTried.joined(separator: ", ")) (they would hand over the password that was refused)"
            }
            return text
        }
    }
}

/// One way of logging in that was tried, and what the server answered.
public struct LoginAttempt: Equatable, Sendable, CustomStringConvertible {
    /// As a person would name it: `SCRAM-SHA-256`, `PLAIN`, `LOGIN command`, `USER/PASS`, `APOP`.
    public var method: String
    /// The server's words: `NO [AUTHENTICATIONFAILED] Authentication failed.`, `535 5.7.8 …`.
    public var answer: String

    public init(method: String, answer: String) {
        self.method = method
        self.answer = answer
    }

    public var description: String { "\(method): \(answer)" }
}

extension LoginFailure: CredentialRefusal {
    /// The server judged the credentials (the provider may renew a token); a server it does not
    /// trust is no reason to hand it other ones.
    public var refusedCredentials: Bool { ending != .serverUnverified }
}
