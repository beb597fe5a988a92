import Foundation
import MailMessage
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A Maildir (with Maildir++ folders) as a source. The ident is the unique part of the file name,
/// which survives a mail reader moving the file from new/ to cur/ or changing its flags.
public final class MaildirSource: MailSource {
    let maildir: Maildir
    public var identity: String { "maildir:\(maildir.root)" }
    public var supportedDisposals: Set<Disposal> { [.keep, .markSeen, .delete] }

    public init(path: String) {
        maildir = Maildir(root: absolutePath(path))
    }

    public func mailboxes() async throws -> [String] {
        guard FileManager.default.fileExists(atPath: maildir.root) else {
            throw FunnelError.noInput(identity, reason: "no such directory")
        }
        guard Maildir.looksLikeMaildir(maildir.root) else {
            throw FunnelError.badSource(identity, reason: "not a Maildir (no cur/ and new/ directories)")
        }
        return try maildir.mailboxes()
    }

    public func list(mailbox: String) async throws -> MailboxListing {
        let dir = maildir.directory(of: mailbox)
        var found: [(ListedMessage, Double)] = []
        for sub in ["new", "cur"] {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(sub)")
            } catch {
                throw FunnelError.badSource(identity, reason: "cannot read \(dir)/\(sub)")
            }
            for name in names where !name.hasPrefix(".") {
                var st = stat()
                guard stat("\(dir)/\(sub)/\(name)", &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                let (unique, info) = Maildir.split(name)
                let flags = info.map { MessageFlags(maildirInfo: $0) } ?? MessageFlags()
                let mtime = Double(st.st_mtim.tv_sec)
                found.append((ListedMessage(ident: unique, size: Int(st.st_size), flags: flags,
                                            internalDate: Date(timeIntervalSince1970: mtime),
                                            locator: .file("\(sub)/\(name)")), mtime))
            }
        }
        found.sort { ($0.1, $0.0.ident) < ($1.1, $1.0.ident) }
        return MailboxListing(mailbox: mailbox, messages: found.map(\.0))
    }

    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: () throws -> Spool) async throws -> [FetchResult] {
        let dir = maildir.directory(of: mailbox)
        var results: [FetchResult] = []
        for m in messages {
            guard let relative = currentPath(of: m, in: dir) else {
                results.append(.failed(m, DeliveryError(.temporary, "the file for \(m.ident) is gone from \(dir)")))
                continue
            }
            let spool = try makeSpool()
            do {
                let file = try LocalFile(path: "\(dir)/\(relative)")
                try file.read { try spool.append($0) }
            } catch let error as FunnelError {
                results.append(.failed(m, DeliveryError(.temporary, error.description)))
                continue
            }
            results.append(.spooled(m, spool.finish(flags: m.flags, internalDate: m.internalDate)))
        }
        return results
    }

    public func dispose(_ messages: [ListedMessage], mailbox: String, how: Disposal) async throws -> [String] {
        let dir = maildir.directory(of: mailbox)
        var done: [String] = []
        for m in messages {
            guard let relative = currentPath(of: m, in: dir) else { continue }
            let path = "\(dir)/\(relative)"
            switch how {
            case .keep:
                continue
            case .delete:
                guard unlink(path) == 0 || errno == ENOENT else {
                    throw DeliveryError(.temporary, "cannot delete \(path): \(String(cString: strerror(errno)))")
                }
            case .markSeen:
                let name = (relative as NSString).lastPathComponent
                let (unique, info) = Maildir.split(name)
                var flags = info.map { MessageFlags(maildirInfo: $0) } ?? MessageFlags()
                if flags.seen && relative.hasPrefix("cur/") {
                    done.append(m.ident)  // already seen: nothing to change
                    continue
                }
                flags.seen = true
                let newPath = "\(dir)/cur/\(unique):2,\(flags.maildirInfo)"
                guard rename(path, newPath) == 0 else {
                    throw DeliveryError(.temporary, "cannot mark \(path) seen: \(String(cString: strerror(errno)))")
                }
            }
            done.append(m.ident)
        }
        return done
    }

    public func close() async throws {}

    /// The file's path relative to the folder now: where it was listed, or, if a mail reader moved
    /// or re-flagged it since, wherever its unique name is now.
    private func currentPath(of m: ListedMessage, in dir: String) -> String? {
        if case let .file(relative) = m.locator, access("\(dir)/\(relative)", F_OK) == 0 { return relative }
        for sub in ["cur", "new"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(sub)")) ?? []
            if let name = names.first(where: { Maildir.split($0).unique == m.ident }) { return "\(sub)/\(name)" }
        }
        return nil
    }
}
