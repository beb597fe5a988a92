import Foundation
import Logging
import FunnelModel
import MailTransport

/// Makes the source or sink a URL names.
public enum Endpoints {
    public static func source(_ url: MailURL, settings: EndpointSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_SOURCE_PASSWORD"),
                              disposal: Disposal = .keep, logger: Logger = Logger(label: "mailfunnel")) throws -> MailSource {
        switch url.scheme {
        case .mbox: return MboxSource(path: url.path, format: url.mboxFormat)
        case .maildir: return MaildirSource(path: url.path)
        case .smtp, .smtps:
            throw FunnelError.badURL(url.description, reason: "SMTP is a target, not a source")
        case .imap, .imaps:
            let who = "source \(url)"
            return IMAPSource(url: url, endpoint: try settings.endpoint(for: url, who: who),
                              credentials: try settings.credentials(for: url, who: who), readOnly: disposal == .keep, logger: logger)
        case .pop3, .pop3s:
            let who = "source \(url)"
            return POP3Source(url: url, endpoint: try settings.endpoint(for: url, who: who),
                              credentials: try settings.credentials(for: url, who: who), logger: logger)
        }
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings = EndpointSettings(passwordVariable: "MAILFUNNEL_TARGET_PASSWORD"),
                            logger: Logger = Logger(label: "mailfunnel")) throws -> MailSink {
        switch url.scheme {
        case .maildir: return MaildirSink(path: url.path)
        case .mbox:
            throw FunnelError.badURL(url.description, reason: "mbox is a source only; deliver into maildir: instead")
        case .pop3, .pop3s:
            throw FunnelError.badURL(url.description, reason: "POP3 is a source, not a target")
        case .imap, .imaps:
            let who = "target \(url)"
            return IMAPSink(url: url, endpoint: try settings.endpoint(for: url, who: who),
                            credentials: try settings.credentials(for: url, who: who), logger: logger)
        case .smtp, .smtps:
            let who = "target \(url)"
            guard let to = settings.envelopeTo, !to.isEmpty else {
                throw FunnelError.usage("\(who): an SMTP target needs an envelope recipient: --envelope-to ADDRESS (envelope_to in the config)")
            }
            let credentials = url.user == nil ? nil : try settings.credentials(for: url, who: who)
            return SMTPSink(url: url, endpoint: try settings.endpoint(for: url, who: who), credentials: credentials,
                            envelopeTo: to, logger: logger)
        }
    }
}
