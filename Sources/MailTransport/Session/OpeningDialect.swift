/// How one protocol says each step of opening a session: IMAP, POP3 and SMTP conform, and
/// `open(_:credentials:)` takes the steps in the order `SessionOpeningStateMachine` gives.
protocol OpeningDialect: AnyObject {
    var endpoint: ServerEndpoint { get }
    var connection: MailConnection { get }
    /// Bytes read from the server and not yet parsed.
    var unparsedByteCount: Int { get }
    /// Whether the capabilities are known already (an IMAP greeting may list them).
    var knowsCapabilities: Bool { get }
    /// Whether the capabilities offer STARTTLS (POP3: STLS).
    var offersStartTLS: Bool { get }
    /// The protocol's error for a server that does not offer STARTTLS when it is required.
    var startTLSNotOffered: any Error { get }

    /// Reads the greeting; throws the protocol's error when it is a refusal.
    func readGreeting() async throws
    /// Asks for the capabilities (IMAP CAPABILITY, POP3 CAPA, SMTP EHLO) and keeps them.
    func askCapabilities() async throws
    /// Sends STARTTLS (POP3: STLS) and reads the go-ahead; throws when the server refuses.
    func sendStartTLS() async throws
    func forgetCapabilities()
    /// Logs in (see `SASLDialect.logIn(_:choosing:exposingAllowed:)`); `exposingAllowed` says
    /// whether a secret may cross the connection as it is.
    func logIn(_ credentials: Credentials, exposingAllowed: Bool) async throws
}

extension OpeningDialect {
    /// Opens the session as `machine` says, logging in with `credentials` when it is to. Closes
    /// the connection if any step fails.
    func open(_ machine: SessionOpeningStateMachine, credentials: Credentials?) async throws {
        precondition(!machine.logsIn || credentials != nil, "a login without credentials")
        var machine = machine
        // A secret may cross as it is under TLS, or in plain text the user asked for.
        var encrypted = endpoint.tls == .implicit
        do {
            var action = machine.connected()
            while true {
                switch action {
                case .readGreeting:
                    try await readGreeting()
                    action = machine.receivedGreeting(announcedCapabilities: knowsCapabilities, offersStartTLS: offersStartTLS)
                case .askCapabilities:
                    try await askCapabilities()
                    action = machine.receivedCapabilities(offersStartTLS: offersStartTLS)
                case .sendStartTLS:
                    try await sendStartTLS()
                    action = machine.startTLSAccepted(unparsedBytes: unparsedByteCount)
                case .startTLSHandshake:
                    try await connection.startTLS()
                    encrypted = true
                    forgetCapabilities()
                    action = machine.tlsEstablished()
                case .logIn:
                    try await logIn(credentials!, exposingAllowed: encrypted || endpoint.tls == .none)
                    action = machine.loggedIn()
                case .refuse(.startTLSNotOffered):
                    throw startTLSNotOffered
                case .refuse(.plaintextAfterStartTLS):
                    throw TransportError.plaintextAfterStartTLS(endpoint: endpoint.description)
                case .opened:
                    return
                }
            }
        } catch {
            await connection.close()
            throw error
        }
    }
}
