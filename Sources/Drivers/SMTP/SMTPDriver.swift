import FunnelModel
import Logging
import MailTransport

/// SMTP relays (`smtp://` with STARTTLS, `smtps://`), as a target only.
public enum SMTPDriver: Driver {
    public static let schemes: [MailURL.Scheme] = [.smtp, .smtps]

    /// The relay's URL (an SMTP URL has no folder).
    public static func identity(of url: MailURL) -> String { url.accountIdentity }

    public static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource {
        throw FunnelError.badURL(url.description, reason: "SMTP is a target, not a source")
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink {
        let who = "target \(url)"
        guard let to = settings.envelopeTo, !to.isEmpty else {
            throw FunnelError.usage("\(who): an SMTP target needs an envelope recipient: --envelope-to ADDRESS (envelope_to in the config)")
        }
        let login = url.user == nil ? nil : try settings.login(for: url, who: who)
        return SMTPSink(url: url, endpoint: try settings.endpoint(for: url, who: who), login: login, envelopeTo: to, logger: logger)
    }

    public static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String] {
        let who = "\(role.rawValue) \(url)"
        let login = url.user == nil ? nil : try settings.login(for: url, who: who)
        let c = try await SMTPClient.open(try settings.endpoint(for: url, who: who), login: login, heloName: "localhost", logger: logger)
        let uses = ["PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8"].map { c.extensions[$0] != nil ? "\($0) yes" : "\($0) no" }
        var details = ["\(login == nil ? "connected (no login)" : "logged in"); SIZE \(c.sizeLimit.map(String.init) ?? "unlimited"); \(uses.joined(separator: ", "))"]
        await c.quit()
        guard let to = settings.envelopeTo else { throw FunnelError.usage("\(who): no envelope_to") }
        details.append("messages go to \(to)")
        return details
    }

    public static func exitStatus(for error: Error) -> ExitStatus? {
        guard let e = error as? SMTPError else { return nil }
        switch e {
        case .authenticationFailed: return .noPermission
        case .startTLSNotOffered: return .unavailable
        case .protocolViolation: return .protocolError
        case .rejected: return e.reply?.isPermanent == true ? .unavailable : .temporaryFailure
        }
    }
}
