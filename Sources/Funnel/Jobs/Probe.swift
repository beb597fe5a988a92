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
        [await Self.probe(role: "source", url: source, settings: sourceSettings, logger: logger),
         await Self.probe(role: "target", url: target, settings: targetSettings, logger: logger)]
    }

    static func probe(role: String, url: MailURL, settings: EndpointSettings, logger: Logger) async -> ProbeResult {
        var result = ProbeResult(role: role, url: url.description, details: [])
        let who = "\(role) \(url)"
        do {
            switch url.scheme {
            case .mbox, .maildir:
                let path = absolutePath(url.path)
                var isDir: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
                if role == "source" {
                    guard exists else { throw FunnelError.noInput(url.description, reason: "no such file or directory") }
                    result.details.append(url.scheme == .mbox ? "an mbox file (\(url.mboxFormat.rawValue))" : "a Maildir")
                } else {
                    let parent = exists ? path : (path as NSString).deletingLastPathComponent
                    guard FileManager.default.isWritableFile(atPath: parent) else {
                        throw FunnelError.io(path: parent, operation: "write in", errno: EACCES)
                    }
                    result.details.append(exists ? "an existing Maildir, writable" : "a new Maildir will be created")
                }
            case .imap, .imaps:
                let c = try await IMAPClient.open(try settings.endpoint(for: url, who: who),
                                                  credentials: try settings.credentials(for: url, who: who), logger: logger)
                let folders = try await c.list().filter(\.isSelectable).count
                let uses = ["IDLE", "MULTIAPPEND", "UIDPLUS", "LITERAL+", "SPECIAL-USE", "CONDSTORE", "MOVE"].map { c.has($0) ? "\($0) yes" : "\($0) no" }
                result.details.append("logged in; \(folders) folders; \(uses.joined(separator: ", "))")
                if let limit = c.appendLimit { result.details.append("APPENDLIMIT \(limit) bytes: larger messages are skipped") }
                result.details.append("capabilities: \(c.capabilities.joined(separator: " "))")
                await c.logout()
            case .pop3, .pop3s:
                let c = try await POP3Client.open(try settings.endpoint(for: url, who: who),
                                                  credentials: try settings.credentials(for: url, who: who), logger: logger)
                let (count, size) = try await c.stat()
                result.details.append("logged in; \(count) messages, \(size) bytes; UIDL \(c.has("UIDL") ? "yes" : "no (keys from header hashes)"), PIPELINING \(c.has("PIPELINING") ? "yes" : "no")")
                if let days = c.expireDays { result.details.append("EXPIRE \(days): the server deletes retrieved messages after \(days) days") }
                result.details.append("capabilities: \(c.capabilities.joined(separator: " | "))")
                try await c.quit()
            case .smtp, .smtps:
                let credentials = url.user == nil ? nil : try settings.credentials(for: url, who: who)
                let c = try await SMTPClient.open(try settings.endpoint(for: url, who: who), credentials: credentials,
                                                  heloName: "localhost", logger: logger)
                let uses = ["PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8"].map { c.extensions[$0] != nil ? "\($0) yes" : "\($0) no" }
                result.details.append("\(credentials == nil ? "connected (no login)" : "logged in"); SIZE \(c.sizeLimit.map(String.init) ?? "unlimited"); \(uses.joined(separator: ", "))")
                if settings.envelopeTo == nil { throw FunnelError.usage("\(who): no envelope_to") }
                result.details.append("messages go to \(settings.envelopeTo!)")
                await c.quit()
            }
        } catch {
            result.failure = describeFailure(error)
        }
        return result
    }
}
