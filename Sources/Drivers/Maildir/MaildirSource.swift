import FunnelModel
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
    public let identity: String
    public var supportedDisposals: Set<Disposal> { [.keep, .markSeen, .delete] }

    public init(path: String, names: MaildirNames = .modifiedUTF7) {
        maildir = Maildir(root: absolutePath(path), names: names)
        identity = MaildirDriver.identity(ofRoot: maildir.root)
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

    public func select(mailbox: String) async throws -> MailboxInfo {
        let dir = maildir.directory(of: mailbox)
        for sub in ["new", "cur"] where access("\(dir)/\(sub)", R_OK | X_OK) != 0 {
            throw FunnelError.badSource(identity, reason: "cannot read \(dir)/\(sub): \(String(cString: strerror(errno)))")
        }
        return MailboxInfo(mailbox: mailbox)
    }

    /// Streams new/ then cur/ in directory order (no sort, so memory stays flat in folder size).
    public var supportsIncrementalListing: Bool { false }

    public func list(mailbox: String, pageSize: Int, after: UInt32?, page: ([ListedMessage]) async throws -> Void) async throws {
        let dir = maildir.directory(of: mailbox)
        var messages: [ListedMessage] = []
        messages.reserveCapacity(pageSize)
        for sub in ["new", "cur"] {
            guard let handle = opendir("\(dir)/\(sub)") else {
                throw FunnelError.badSource(identity, reason: "cannot read \(dir)/\(sub): \(String(cString: strerror(errno)))")
            }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                guard !name.hasPrefix(".") else { continue }
                var st = stat()
                guard stat("\(dir)/\(sub)/\(name)", &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                let (unique, info) = Maildir.split(name)
                let flags = info.map { MessageFlags(maildirInfo: $0) } ?? MessageFlags()
                messages.append(ListedMessage(ident: unique, size: Int(st.st_size), flags: flags,
                                              internalDate: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec)),
                                              locator: .file("\(sub)/\(name)")))
                if messages.count >= pageSize {
                    try await page(messages)
                    messages.removeAll(keepingCapacity: true)
                }
            }
        }
        if !messages.isEmpty { try await page(messages) }
    }

    public func fetch(_ messages: [ListedMessage], mailbox: String, makeSpool: @escaping () throws -> Spool) async throws -> [FetchResult] {
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

    public func close() async throws -> [String: [String]] { [:] }

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
