import FunnelModel
import Logging
import MailTransport

/// IMAP accounts (`imap://` with STARTTLS, `imaps://`), as a source and as a target.
public enum IMAPDriver: Driver {
    public static let schemes: [MailURL.Scheme] = [.imap, .imaps]

    /// The URL without its folder: one account, whichever of its folders are read or written.
    public static func identity(of url: MailURL) -> String { url.accountIdentity }

    public static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource {
        let who = "source \(url)"
        return IMAPSource(url: url, endpoint: try settings.endpoint(for: url, who: who), login: try settings.login(for: url, who: who),
                          readOnly: disposal == .keep, logger: logger)
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink {
        let who = "target \(url)"
        return IMAPSink(url: url, endpoint: try settings.endpoint(for: url, who: who), login: try settings.login(for: url, who: who),
                        logger: logger)
    }

    public static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String] {
        let who = "\(role.rawValue) \(url)"
        let c = try await IMAPClient.open(try settings.endpoint(for: url, who: who), login: try settings.login(for: url, who: who),
                                          logger: logger)
        let folders = try await c.list().filter(\.isSelectable).count
        let uses = ["IDLE", "MULTIAPPEND", "UIDPLUS", "LITERAL+", "SPECIAL-USE", "CONDSTORE", "MOVE"].map { c.has($0) ? "\($0) yes" : "\($0) no" }
        var details = ["logged in; \(folders) folders; \(uses.joined(separator: ", "))"]
        if let limit = c.appendLimit { details.append("APPENDLIMIT \(limit) bytes: larger messages are skipped") }
        details.append("capabilities: \(c.capabilities.joined(separator: " "))")
        await c.logout()
        return details
    }

    public static func exitStatus(for error: Error) -> ExitStatus? {
        guard let e = error as? IMAPError else { return nil }
        switch e {
        case .authenticationFailed, .noUsableMechanism: return .noPermission
        case .startTLSNotOffered: return .unavailable
        case .protocolViolation: return .protocolError
        case .bye, .commandFailed: return .temporaryFailure
        }
    }
}
