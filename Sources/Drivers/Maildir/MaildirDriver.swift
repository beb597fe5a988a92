import Foundation
import FunnelModel
import Logging

/// Maildirs with Maildir++ folders (`maildir:PATH`), as a source and as a target.
public enum MaildirDriver: Driver {
    public static let schemes: [MailURL.Scheme] = [.maildir]

    /// The absolute path of the Maildir's root.
    public static func identity(of url: MailURL) -> String { identity(ofRoot: absolutePath(url.path)) }

    static func identity(ofRoot root: String) -> String { "maildir:\(root)" }

    public static func source(_ url: MailURL, settings: EndpointSettings, disposal: Disposal, logger: Logger) throws -> MailSource {
        MaildirSource(path: url.path, names: url.maildirNames)
    }

    public static func sink(_ url: MailURL, settings: EndpointSettings, logger: Logger) throws -> MailSink {
        MaildirSink(path: url.path, names: url.maildirNames)
    }

    public static func probe(_ url: MailURL, as role: EndpointRole, settings: EndpointSettings, logger: Logger) async throws -> [String] {
        let path = absolutePath(url.path)
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        switch role {
        case .source:
            guard exists else { throw FunnelError.noInput(url.description, reason: "no such file or directory") }
            return ["a Maildir"]
        case .target:
            let parent = exists ? path : (path as NSString).deletingLastPathComponent
            guard FileManager.default.isWritableFile(atPath: parent) else {
                throw FunnelError.io(path: parent, operation: "write in", errno: EACCES)
            }
            return [exists ? "an existing Maildir, writable" : "a new Maildir will be created"]
        }
    }
}
