import LedgerSQLite
import TransferEngine
import Drivers
import FunnelModel
import Foundation
import Logging
import MailTransport

/// What `mailfunnel check` learned about one end of an account.
public struct ProbeResult: Sendable {
    public var role: String
    public var url: String
    /// What the server offers and what MailFunnel will use, in words.
    public var details: [String]
    /// The failure, with the exit status it maps to; nil when all is well.
    public var failure: (status: ExitStatus, message: String)?
}

extension ImportJob {
    /// Logs in to the source and the target and reports what each offers and what will be used.
    /// Changes nothing: POP3 sessions end with QUIT after no DELE, IMAP folders are only listed.
    public func probe(logger: Logger) async -> [ProbeResult] {
        [await Self.probe(role: .source, url: source, settings: sourceSettings, logger: logger),
         await Self.probe(role: .target, url: target, settings: targetSettings, logger: logger)]
    }

    static func probe(role: EndpointRole, url: MailURL, settings: EndpointSettings, logger: Logger) async -> ProbeResult {
        var result = ProbeResult(role: role.rawValue, url: url.description, details: [])
        do {
            result.details = try await Endpoints.driver(for: url.scheme).probe(url, as: role, settings: settings, logger: logger)
        } catch {
            result.failure = describeFailure(error)
        }
        return result
    }
}
