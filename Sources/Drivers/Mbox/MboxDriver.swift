import Foundation
import FunnelModel
import Logging

/// mbox files (`mbox:PATH`, `?format=mboxo`), as a read-only source.
public enum MboxDriver: Driver {
    public static let schemes: [MailURL.Scheme] = [.mbox]

    /// The absolute path: the format says how the file is read, not which mailbox it is.
    public static func identity(of url: MailURL) -> String { identity(ofPath: url.path) }

    static func identity(ofPath path: String) -> String { "mbox:\(absolutePath(path))" }

    public static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource {
        MboxSource(path: url.path, format: url.mboxFormat)
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink {
        throw FunnelError.badURL(url.description, reason: "mbox is a source only; deliver into maildir: instead")
    }

    public static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String] {
        guard FileManager.default.fileExists(atPath: absolutePath(url.path)) else {
            throw FunnelError.noInput(url.description, reason: "no such file or directory")
        }
        return ["an mbox file (\(url.mboxFormat.rawValue))"]
    }
}
