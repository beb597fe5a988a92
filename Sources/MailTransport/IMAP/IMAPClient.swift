import IMAPCore
import Logging
import NIOCore

/// An IMAP session over one connection, used by one task at a time.
/// - SeeAlso: RFC 3501, RFC 9051
public final class IMAPClient {
    public let endpoint: ServerEndpoint
    let connection: MailConnection
    var parser: IMAPResponseParser
    var buffer = ByteBuffer()
    /// The server's lines as the trace shows them (`-vv`).
    var serverLines = IMAPTraceLines()
    var tagNumber = 0
    var trace: ProtocolTrace
    public internal(set) var capabilities: [String] = [] {
        didSet { capabilitySet = Set(capabilities.map { $0.uppercased() }) }
    }
    /// The capabilities upper-cased, for `has` (asked for every APPENDed message).
    private var capabilitySet: Set<String> = []
    public internal(set) var encoder = IMAPCommandEncoder()
    public internal(set) var selected: SelectedMailbox?
    /// Untagged EXISTS seen since the last command (IDLE and NOOP report new mail this way).
    public internal(set) var lastExists: UInt32?
    var closed = false
    /// The tag of the AUTHENTICATE command under way.
    var authenticationTag = ""

    private init(endpoint: ServerEndpoint, connection: MailConnection, logger: Logger, limits: IMAPResponseParser.Limits) {
        self.endpoint = endpoint
        self.connection = connection
        self.parser = IMAPResponseParser(limits: limits)
        self.trace = ProtocolTrace(logger: logger, server: endpoint.description)
    }

    /// Connects, reads the greeting and, for STARTTLS endpoints, upgrades (refusing a server that
    /// does not offer it). Returns a session that is not yet logged in.
    public static func connect(to endpoint: ServerEndpoint, logger: Logger,
                               limits: IMAPResponseParser.Limits = .init()) async throws -> IMAPClient {
        try await start(endpoint, logger: logger, limits: limits, credentials: nil)
    }

    /// Connects, logs in and introduces itself (ID): a session ready for work. Closes the
    /// connection if any step fails.
    public static func open(_ endpoint: ServerEndpoint, credentials: Credentials, logger: Logger) async throws -> IMAPClient {
        let c = try await start(endpoint, logger: logger, limits: .init(), credentials: credentials)
        do {
            try await c.id([("name", "mailfunnel"), ("version", "0.1")])
        } catch {
            await c.close()
            throw error
        }
        return c
    }

    /// The opening every session shares (`SessionOpeningStateMachine`), with a login when
    /// `credentials` are given. Closes the connection if a step fails.
    private static func start(_ endpoint: ServerEndpoint, logger: Logger, limits: IMAPResponseParser.Limits,
                              credentials: Credentials?) async throws -> IMAPClient {
        let connection = try await MailConnection.connect(to: endpoint)
        let client = IMAPClient(endpoint: endpoint, connection: connection, logger: logger, limits: limits)
        let opening = SessionOpeningStateMachine(requiresStartTLS: endpoint.tls == .startTLS,
                                                 capabilityQuery: .unlessAnnounced, logsIn: credentials != nil)
        try await client.open(opening, credentials: credentials)
        return client
    }

    public func has(_ capability: String) -> Bool {
        capabilitySet.contains(capability.uppercased())
    }

    /// `APPENDLIMIT=n` from the capabilities, if the server announced one.
    public var appendLimit: Int? {
        capabilities.lazy.compactMap { c -> Int? in
            c.uppercased().hasPrefix("APPENDLIMIT=") ? Int(c.dropFirst("APPENDLIMIT=".count)) : nil
        }.first
    }

    public func refreshCapabilities() async throws {
        _ = try await run(.capability)
    }

    func setCapabilities(_ caps: [String]) {
        capabilities = caps
        encoder = IMAPCommandEncoder(literalPlus: has("LITERAL+"), literalMinus: has("LITERAL-"),
                                     utf8Accept: encoder.utf8Accept)
    }

    /// Closes the connection from anywhere (a cancellation handler): whatever waits on it fails.
    public var abort: @Sendable () -> Void {
        let c = connection
        return { c.closeNow() }
    }

    /// Says goodbye and closes; errors on the way out are ignored (the work is done).
    public func logout() async {
        guard !closed else { return }
        closed = true
        _ = try? await run(.logout)
        await connection.close()
    }

    /// Closes without LOGOUT (after an error).
    public func close() async {
        closed = true
        await connection.close()
    }
}
