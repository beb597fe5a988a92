import Logging
import SASL

/// `SASL.Credentials`, named here too so that callers of the clients need not import SASL.
public typealias Credentials = SASL.Credentials

/// Where a login's credentials come from. It is asked at every login, so that a token can be
/// fresh, and once more after the server refused what it gave, so that an expired token can be
/// renewed; a password is what it is, and is not tried twice.
public protocol CredentialProvider: Sendable {
    /// The credentials for the next login.
    func credentials() async throws -> Credentials

    /// The server refused `refused`: credentials to try once more, or nil when there are none.
    func renewed(after refused: Credentials) async throws -> Credentials?
}

/// A user name and a password (or a token) known before the session starts.
public struct FixedCredentials: CredentialProvider {
    public let value: Credentials

    public init(_ value: Credentials) { self.value = value }

    public func credentials() async throws -> Credentials { value }
    public func renewed(after refused: Credentials) async throws -> Credentials? { nil }
}

/// An error that says the server refused the credentials themselves (not that it was busy).
public protocol CredentialRefusal: Error {
    var refusedCredentials: Bool { get }
}

extension CredentialProvider {
    /// Runs `login` with this provider's credentials, and once more with renewed ones when the
    /// server refuses them.
    public func withLogin<T>(_ login: (Credentials) async throws -> T) async throws -> T {
        let first = try await credentials()
        do {
            return try await login(first)
        } catch let error as CredentialRefusal where error.refusedCredentials {
            guard let next = try await renewed(after: first) else { throw error }
            return try await login(next)
        }
    }
}

extension IMAPError: CredentialRefusal {
    public var refusedCredentials: Bool {
        if case .authenticationFailed = self { return true }
        return false
    }
}

extension POP3Error: CredentialRefusal {
    /// `[SYS/TEMP]` and `[LOGIN-DELAY]` refusals are the server's state, not the credentials'.
    public var refusedCredentials: Bool {
        if case .authenticationFailed = self { return responseCode?.isTemporary != true }
        return false
    }
}

extension SMTPError: CredentialRefusal {
    public var refusedCredentials: Bool {
        if case .authenticationFailed = self { return true }
        return false
    }
}

extension IMAPClient {
    /// `open(_:credentials:logger:)` with credentials asked of `login` (see `CredentialProvider`).
    public static func open(_ endpoint: ServerEndpoint, login: any CredentialProvider, logger: Logger) async throws -> IMAPClient {
        try await login.withLogin { try await open(endpoint, credentials: $0, logger: logger) }
    }
}

extension POP3Client {
    /// `open(_:credentials:logger:)` with credentials asked of `login` (see `CredentialProvider`).
    public static func open(_ endpoint: ServerEndpoint, login: any CredentialProvider, logger: Logger) async throws -> POP3Client {
        try await login.withLogin { try await open(endpoint, credentials: $0, logger: logger) }
    }
}

extension SMTPClient {
    /// `open(_:credentials:heloName:logger:)` with credentials asked of `login`, or no login at all.
    public static func open(_ endpoint: ServerEndpoint, login: (any CredentialProvider)?, heloName: String,
                            logger: Logger) async throws -> SMTPClient {
        guard let login else { return try await open(endpoint, credentials: nil, heloName: heloName, logger: logger) }
        return try await login.withLogin { try await open(endpoint, credentials: $0, heloName: heloName, logger: logger) }
    }
}
