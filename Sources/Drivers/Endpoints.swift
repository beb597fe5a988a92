import FunnelModel
import Logging

/// From a URL to what it names, through the driver table (mbsync's: the engine never sees which
/// kind of mailbox it talks to).
public enum Endpoints {
    /// Every kind of mailbox MailFunnel knows.
    public static let drivers: [any Driver.Type] = [IMAPDriver.self, POP3Driver.self, MboxDriver.self, MaildirDriver.self,
                                                    SMTPDriver.self]

    /// The driver of a URL's scheme.
    public static func driver(for scheme: MailURL.Scheme) -> any Driver.Type {
        guard let d = drivers.first(where: { $0.schemes.contains(scheme) }) else {
            preconditionFailure("no driver for \(scheme.rawValue): every scheme has one")
        }
        return d
    }

    /// The ledger's name for the account or target a URL names (see `Driver.identity(of:)`).
    public static func identity(of url: MailURL) -> String {
        driver(for: url.scheme).identity(of: url)
    }

    public static func source(_ url: MailURL, settings: EndpointSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_SOURCE_PASSWORD"),
                              disposal: Disposal = .keep, logger: Logger = Logger(label: "mailfunnel")) throws -> MailSource {
        try driver(for: url.scheme).source(url, settings: settings, disposal: disposal, logger: logger)
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_TARGET_PASSWORD"),
                            logger: Logger = Logger(label: "mailfunnel")) throws -> MailSink {
        try driver(for: url.scheme).sink(url, settings: settings, logger: logger)
    }

    /// The exit status of an error a driver's protocol raised, if one claims it.
    public static func exitStatus(for error: Error) -> ExitStatus? {
        for d in drivers { if let s = d.exitStatus(for: error) { return s } }
        return nil
    }
}
