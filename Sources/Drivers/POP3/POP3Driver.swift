import FunnelModel
import Logging
import MailTransport

/// POP3 boxes (`pop3://` with STLS, `pop3s://`), as a source only.
public enum POP3Driver: Driver {
    public static let schemes: [MailURL.Scheme] = [.pop3, .pop3s]

    /// A POP3 URL has no folder: the URL is the account.
    public static func identity(of url: MailURL) -> String { url.accountIdentity }

    public static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource {
        let who = "source \(url)"
        return POP3Source(url: url, endpoint: try settings.endpoint(for: url, who: who), login: try settings.login(for: url, who: who),
                          logger: logger)
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink {
        throw FunnelError.badURL(url.description, reason: "POP3 is a source, not a target")
    }

    public static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String] {
        let who = "\(role.rawValue) \(url)"
        let c = try await POP3Client.open(try settings.endpoint(for: url, who: who), login: try settings.login(for: url, who: who),
                                          logger: logger)
        let (count, size) = try await c.stat()
        var details = ["logged in; \(count) messages, \(size) bytes; UIDL \(c.has("UIDL") ? "yes" : "no (keys from header hashes)"), PIPELINING \(c.has("PIPELINING") ? "yes" : "no")"]
        if let days = c.expireDays { details.append("EXPIRE \(days): the server deletes retrieved messages after \(days) days") }
        details.append("capabilities: \(c.capabilities.joined(separator: " | "))")
        // QUIT after no DELE: nothing is deleted.
        try await c.quit()
        return details
    }

    public static func exitStatus(for error: Error) -> ExitStatus? {
        guard let e = error as? POP3Error else { return nil }
        switch e {
        case .authenticationFailed: return e.responseCode?.isTemporary == true ? .temporaryFailure : .noPermission
        case .startTLSNotOffered: return .unavailable
        case .protocolViolation: return .protocolError
        case .quitFailed, .commandFailed: return .temporaryFailure
        }
    }
}
