import FunnelModel
import Crypto
import Foundation
import MailMessage
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Delivers into a Maildir (Maildir++ folders for other mailboxes): each message is written to tmp/,
/// made durable, then moved into new/ (or cur/ with its flags), never overwriting.
///
/// The file name is derived from the source key (`<date>.MF<hash of the key>.<host>,S=<size>`), so
/// after a crash recovery knows exactly whether a message arrived: it looks for that name and checks
/// the content's SHA-256. The file's mtime is set to the message's date, which is what Dovecot and
/// other readers take as the received date.
///
/// Durability comes in groups: `deliver` writes to tmp/ without syncing; `flush` syncs the file
/// system once (syncfs), moves every file into place, and syncs again. Two syncs per batch instead
/// of two per message. A transfer takes that work from `flushLeavingSettlement` and runs it while
/// the next batch is written to tmp/; batches whose settlements queue up share their syncs.
public final class MaildirSink: MailSink {
    let maildir: Maildir
    public let identity: String
    public var requiresCRLF: Bool { false }
    public var maxMessageSize: Int? { nil }
    /// `deliver` writes the whole message to tmp/; `flush` only syncs and renames.
    public var readsMessagesAtFlush: Bool { false }
    private let host: String
    private var staged: [(tmp: String, final: String)] = []
    private var prepared: Set<String> = []

    public init(path: String, names: MaildirNames = .modifiedUTF7) {
        maildir = Maildir(root: absolutePath(path), names: names)
        identity = MaildirDriver.identity(ofRoot: maildir.root)
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let name = String(cString: buffer)
        // Maildir's convention: '/' and ':' in the host name are written as \057 and \072.
        host = (name.isEmpty ? "localhost" : name).replacingOccurrences(of: "/", with: "\\057")
            .replacingOccurrences(of: ":", with: "\\072")
    }

    public func prepare(mailbox: String) async throws -> TargetWatermark {
        let dir = maildir.directory(of: mailbox)
        guard !prepared.contains(dir) else { return TargetWatermark() }
        for sub in ["tmp", "new", "cur"] { try makeDirectory("\(dir)/\(sub)") }
        if dir != maildir.root {
            try makeDirectory("\(maildir.root)/tmp")
            try makeDirectory("\(maildir.root)/new")
            try makeDirectory("\(maildir.root)/cur")
            // Maildir++ marks folders with an empty 'maildirfolder' file.
            FileManager.default.createFile(atPath: "\(dir)/maildirfolder", contents: nil)
        }
        prepared.insert(dir)
        return TargetWatermark()
    }

    /// The unique part of the file name for a source key: the same key always gives the same name.
    /// Named by the source part of the key's account, as before records were kept per target, so
    /// a message pending across that upgrade is still found.
    static func uniqueName(for key: SourceKey, target: String, date: Date?, host: String) -> String {
        var h = SHA256()
        let account = LedgerAccount.source(of: key.account, target: target)
        h.update(data: Data("\(account)\u{0}\(key.mailbox)\u{0}\(key.uidValidity)\u{0}\(key.ident)".utf8))
        let digest = Array(h.finalize()).prefix(16).hexString
        let seconds = Int64((date ?? Date(timeIntervalSince1970: 0)).timeIntervalSince1970)
        return "\(max(seconds, 0)).MF\(digest).\(host)"
    }

    static func keyMarker(for key: SourceKey, target: String) -> String {
        let name = uniqueName(for: key, target: target, date: nil, host: "")
        let start = name.range(of: ".MF")!.lowerBound
        return String(name[start...])  // ".MF<hash>." : what recovery looks for
    }

    public func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        let dir = maildir.directory(of: mailbox)
        let unique = Self.uniqueName(for: key, target: identity, date: message.internalDate, host: host) + ",S=\(message.size)"
        let info = message.flags.maildirInfo
        let relative = message.flags.isEmpty || (info.isEmpty) ? "new/\(unique)" : "cur/\(unique):2,\(info)"
        let tmp = "\(dir)/tmp/\(unique)"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("create", tmp) }
        do {
            try message.forEachChunk { chunk in
                try chunk.withUnsafeReadableBytes { bytes in
                    var done = 0
                    while done < bytes.count {
                        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                        if n < 0 {
                            if errno == EINTR { continue }
                            throw Self.failure("write", tmp)
                        }
                        done += n
                    }
                }
            }
            if let date = message.internalDate {
                let seconds = Int(date.timeIntervalSince1970)
                var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
                _ = futimens(fd, &times)
            }
        } catch {
            Glibc.close(fd)
            unlink(tmp)
            throw error
        }
        guard Glibc.close(fd) == 0 else { throw Self.failure("close", tmp) }
        staged.append((tmp, "\(dir)/\(relative)"))
        return .delivered(relative)
    }

    /// Moves what was written into place between two file-system syncs; nothing here is staged in
    /// the protocol's sense (every outcome was known at `deliver`).
    public func flush() async throws -> [SourceKey: StagedOutcome] {
        let (outcomes, settle) = try await flushLeavingSettlement()
        try settle?.run()
        return outcomes
    }

    /// The syncs and moves of what was written since the last flush, as work of its own: the next
    /// batch's files go to tmp/ while these are made durable and moved into place.
    public func flushLeavingSettlement() async throws -> (outcomes: [SourceKey: StagedOutcome], settle: Settlement?) {
        guard !staged.isEmpty else { return ([:], nil) }
        let files = staged
        let root = maildir.root
        staged.removeAll()
        let move: @Sendable () throws -> Void = {
            for (tmp, final) in files {
                try Self.moveIntoPlace(tmp, final)
            }
        }
        // A syncfs makes all of the file system durable: batches settled together share theirs.
        if Self.syncfs != nil {
            return ([:], Settlement(scope: "syncfs \(root)", sync: { try Self.syncFileSystem(root: root, files: files) },
                                    move: move))
        }
        return ([:], Settlement {
            try Self.syncFileSystem(root: root, files: files)
            try move()
            try Self.syncFileSystem(root: root, files: files)
        })
    }

    /// The file name comes from the source key, so twins never share one: `taken` is not needed.
    public func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        let dir = maildir.directory(of: record.targetMailbox)
        let marker = Self.keyMarker(for: record.key, target: identity)
        // A file left in tmp/ never became visible: remove it.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/tmp")) ?? [] where name.contains(marker) {
            unlink("\(dir)/tmp/\(name)")
        }
        for sub in ["new", "cur"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(sub)")) ?? [] where name.contains(marker) {
                let path = "\(dir)/\(sub)/\(name)"
                if try Self.sha256(ofFile: path) == record.sha256 {
                    return .present("\(sub)/\(name)")
                }
                // Visible but not whole (the crash hit before the sync): it is not the message.
                unlink(path)
            }
        }
        return .absent
    }

    public func close() async throws {
        _ = try await flush()
    }

    /// Makes `files` durable (each where it is now, in tmp/ or moved into place): one syncfs(2) for
    /// the whole file system where the C library has it, otherwise an fsync of every file and of
    /// their directories.
    private static func syncFileSystem(root: String, files: [(tmp: String, final: String)]) throws {
        if let syncfs = Self.syncfs {
            let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw Self.failure("open", root) }
            defer { Glibc.close(fd) }
            guard syncfs(fd) == 0 else { throw Self.failure("sync", root) }
            return
        }
        var dirs: Set<String> = []
        for (tmp, final) in files {
            for path in [tmp, final] where access(path, F_OK) == 0 {
                try Self.fsync(path)
                dirs.insert((path as NSString).deletingLastPathComponent)
            }
        }
        for dir in dirs { try Self.fsync(dir) }
    }

    private static func fsync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path) }
        defer { Glibc.close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw failure("fsync", path) }
    }

    /// Moves a file from tmp/ into place, never over another: one rename with RENAME_NOREPLACE
    /// where the file system has it (one directory operation, not a link and an unlink), else
    /// link(2) and unlink(2). A file already there (EEXIST: the same key was delivered before, and
    /// the ledger was lost or reset) is kept rather than doubled, and ours removed.
    static func moveIntoPlace(_ tmp: String, _ final: String) throws {
        if let renameat2 = Self.renameat2 {
            if renameat2(AT_FDCWD, tmp, AT_FDCWD, final, 1 /* RENAME_NOREPLACE */) == 0 { return }
            if errno == EEXIST {
                unlink(tmp)
                return
            }
            // EINVAL or ENOSYS: this file system cannot refuse to replace; link below.
            guard errno == EINVAL || errno == ENOSYS else { throw failure("move into place", final) }
        }
        if link(tmp, final) != 0 {
            guard errno == EEXIST else { throw failure("link into place", final) }
        }
        unlink(tmp)
    }

    /// renameat2(2), looked up at run time like syncfs (glibc 2.28 and later have it).
    private static let renameat2: (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32).self)
    }()

    /// syncfs(2) is a GNU extension that Swift's Glibc module does not import; look it up at run time.
    private static let syncfs: (@convention(c) (Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Int32).self)
    }()

    static func sha256(ofFile path: String) throws -> String {
        var h = SHA256()
        try LocalFile(path: path).read { h.update(bufferPointer: $0) }
        return h.finalize().hexString
    }

    /// A local write failure stops the sink (a full disk will not get better for the next message).
    static func failure(_ operation: String, _ path: String) -> DeliveryError {
        DeliveryError(.sinkFailed, "\(operation) \(path): \(String(cString: strerror(errno)))")
    }
}
