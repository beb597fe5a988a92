/// Opening a session, sans I/O: the greeting, the capabilities, STARTTLS when the endpoint
/// requires it, and the login. IMAP, POP3 and SMTP take the same steps, each saying them in its
/// own way (`OpeningDialect`).
///
/// ```
/// S: 220 mx.example.org ESMTP                 receivedGreeting(…)                     → .askCapabilities
/// C: EHLO client.example.org
/// S: 250-STARTTLS                             receivedCapabilities(offersStartTLS: true) → .sendStartTLS
/// C: STARTTLS
/// S: 220 2.0.0 Ready to start TLS             startTLSAccepted(unparsedBytes: 0)      → .startTLSHandshake
///    (handshake)                              tlsEstablished()                        → .askCapabilities
/// C: EHLO client.example.org
/// S: 250 AUTH PLAIN SCRAM-SHA-256             receivedCapabilities(offersStartTLS: false) → .logIn
/// ```
/// - SeeAlso: RFC 2595 §3.1, RFC 3207 §4.2 and RFC 9051 §6.2.1 (capabilities after STARTTLS)
struct SessionOpeningStateMachine: Sendable {
    /// When the client asks for the capabilities after the greeting.
    enum CapabilityQuery: Sendable, Equatable {
        /// Always: POP3's CAPA, SMTP's EHLO.
        case always
        /// Only when the greeting did not announce them (IMAP's `[CAPABILITY …]` code).
        case unlessAnnounced
    }

    /// Why the opening stops before any secret is sent.
    enum Refusal: Sendable, Equatable {
        /// STARTTLS is required and the server does not offer it.
        case startTLSNotOffered
        /// Bytes came between the go-ahead to STARTTLS and the handshake: they would be an
        /// attacker's, read as if they had come under TLS (CVE-2011-0411).
        case plaintextAfterStartTLS
    }

    /// What the client does next.
    enum Action: Sendable, Equatable {
        case readGreeting
        case askCapabilities
        /// Send STARTTLS (POP3: STLS) and read the go-ahead.
        case sendStartTLS
        /// Start TLS, and forget the capabilities said in plain text.
        case startTLSHandshake
        case logIn
        case refuse(Refusal)
        /// The session is open (logged in when it was to be).
        case opened
    }

    enum State: Sendable, Equatable {
        case connected
        case awaitingGreeting
        case awaitingCapabilities
        case awaitingStartTLSAnswer
        case handshaking
        case loggingIn
        case opened
        case refused
    }

    let requiresStartTLS: Bool
    let capabilityQuery: CapabilityQuery
    let logsIn: Bool
    private(set) var state = State.connected
    /// Whether TLS was started on this connection (by STARTTLS).
    private var upgraded = false

    init(requiresStartTLS: Bool, capabilityQuery: CapabilityQuery, logsIn: Bool) {
        self.requiresStartTLS = requiresStartTLS
        self.capabilityQuery = capabilityQuery
        self.logsIn = logsIn
    }

    /// The connection is up (with implicit TLS, the handshake is done).
    mutating func connected() -> Action {
        precondition(state == .connected)
        state = .awaitingGreeting
        return .readGreeting
    }

    /// The server greeted; `announcedCapabilities` says whether it listed its capabilities then.
    mutating func receivedGreeting(announcedCapabilities: Bool, offersStartTLS: Bool) -> Action {
        precondition(state == .awaitingGreeting)
        if capabilityQuery == .always || !announcedCapabilities {
            state = .awaitingCapabilities
            return .askCapabilities
        }
        return capabilitiesKnown(offersStartTLS: offersStartTLS)
    }

    mutating func receivedCapabilities(offersStartTLS: Bool) -> Action {
        precondition(state == .awaitingCapabilities)
        return capabilitiesKnown(offersStartTLS: offersStartTLS)
    }

    /// The server said go ahead to STARTTLS; `unparsedBytes` is what the client read beyond that
    /// answer.
    mutating func startTLSAccepted(unparsedBytes: Int) -> Action {
        precondition(state == .awaitingStartTLSAnswer)
        guard unparsedBytes == 0 else {
            state = .refused
            return .refuse(.plaintextAfterStartTLS)
        }
        state = .handshaking
        return .startTLSHandshake
    }

    /// TLS is up: what the server said before it no longer counts, so it is asked again.
    mutating func tlsEstablished() -> Action {
        precondition(state == .handshaking)
        upgraded = true
        state = .awaitingCapabilities
        return .askCapabilities
    }

    mutating func loggedIn() -> Action {
        precondition(state == .loggingIn)
        state = .opened
        return .opened
    }

    private mutating func capabilitiesKnown(offersStartTLS: Bool) -> Action {
        if requiresStartTLS && !upgraded {
            guard offersStartTLS else {
                state = .refused
                return .refuse(.startTLSNotOffered)
            }
            state = .awaitingStartTLSAnswer
            return .sendStartTLS
        }
        if logsIn {
            state = .loggingIn
            return .logIn
        }
        state = .opened
        return .opened
    }
}
