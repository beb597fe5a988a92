import FunnelModel
import Logging

/// One kind of mailbox MailFunnel reads or writes, and everything the rest of it needs to know of
/// that kind, in one place: which URL schemes name it, the ledger's name for one of its accounts,
/// how to make its source or sink, how to look at it without changing anything, and what its
/// errors mean for the exit status. A new kind of mailbox is a folder with one of these, listed in
/// `Endpoints.drivers`.
public protocol Driver {
    /// The URL schemes that name this kind of mailbox.
    static var schemes: [MailURL.Scheme] { get }

    /// The ledger's name for the account (or target) a URL names: the one place it is derived, so
    /// that every row of one account, whoever writes it, carries the same name.
    static func identity(of url: MailURL) -> String

    /// The source a URL names; throws when this kind of mailbox cannot be one.
    static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource

    /// The sink a URL names; throws when this kind of mailbox cannot be one.
    static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink

    /// Logs in (or looks at the file) and says, in words, what is there and what will be used.
    /// Changes nothing at the server or on disk.
    static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String]

    /// The exit status an error of this kind's protocol ends a command with; nil when the error is
    /// not one of its own.
    static func exitStatus(for error: Error) -> ExitStatus?
}

extension Driver {
    public static func exitStatus(for error: Error) -> ExitStatus? { nil }
}

/// Which end of an account an endpoint is.
public enum EndpointRole: String, Sendable {
    case source, target
}
