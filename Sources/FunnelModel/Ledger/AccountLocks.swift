import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One process at a time works on an account of a ledger: two runs of the same account would both
/// list what neither has delivered yet and both deliver it. Each account has a lock file in a
/// directory beside the ledger, held with `flock`, so the lock ends with its process however that
/// ends (`kill -9` too) and never needs clearing by hand; the file names who holds it. Reading the
/// ledger (`status`) takes no lock.
public struct AccountLocks: Sendable {
    public let directory: String

    /// The locks of the ledger at `ledgerPath`: `ledger.sqlite` has them in `ledger.sqlite.locks/`.
    public init(ledgerPath: String) {
        directory = ledgerPath + ".locks"
    }

    /// Takes the account's lock for this process, or throws `FunnelError.busy` naming its holder.
    /// `name` is the account's name for messages; `command` says what holds it (`mailfunnel run`).
    public func hold(account: String, name: String, command: String) throws -> AccountLock {
        let fd = try openLockFile(account)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(fd) }
            guard code == EWOULDBLOCK else { throw FunnelError.io(path: path(account), operation: "lock", errno: code) }
            throw FunnelError.busy(account: name, holder: Self.holder(fd))
        }
        // Who holds it, for the run that finds it taken; written only once the lock is ours.
        let note = "pid \(getpid()) (\(command), since \(Self.utcNow()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
        return AccountLock(fd: fd)
    }

    /// Takes the account's lock, waiting while another process holds it; `waiting` is told the
    /// holder once, when the wait begins. A cancelled task stops waiting.
    public func hold(account: String, name: String, command: String, waiting: (String) -> Void,
                     every step: Duration = .milliseconds(250)) async throws -> AccountLock {
        var told = false
        while true {
            do {
                return try hold(account: account, name: name, command: command)
            } catch let FunnelError.busy(_, holder) {
                if !told { waiting(holder); told = true }
                try await Task.sleep(for: step)
            }
        }
    }

    /// Runs `body` holding the ledger-wide lock `name`, waiting for it: for what two processes
    /// opening one ledger must not do at once, such as creating or migrating its schema.
    public func exclusive<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let file = "\(directory)/\(name).lock"
        let fd = try openFile(file)
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FunnelError.io(path: file, operation: "lock", errno: errno) }
        }
        return try body()
    }

    /// The time as ISO 8601 in UTC, by strftime: Foundation's formatters load ICU's tables, which
    /// cost every run their memory for one timestamp (docs/PERFORMANCE.md).
    static func utcNow() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The lock file of an account: named by a digest, since an account identity is a URL.
    func path(_ account: String) -> String {
        let digest = SHA256.hash(data: Array(account.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
        return "\(directory)/\(digest).lock"
    }

    private func openLockFile(_ account: String) throws -> Int32 { try openFile(path(account)) }

    private func openFile(_ file: String) throws -> Int32 {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw FunnelError.io(path: directory, operation: "create the lock directory", errno: errno)
        }
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FunnelError.io(path: file, operation: "open the lock file", errno: errno) }
        return fd
    }

    /// What the lock file says of its holder; its holder may be between taking the lock and
    /// writing the note, when there is nothing to read yet.
    private static func holder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = pread(fd, &buffer, buffer.count, 0)
        let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        return text.isEmpty ? "another mailfunnel process" : text
    }
}

/// A held account lock; released by `release()` or when the last reference goes.
public final class AccountLock: @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        lock.withLock {
            guard fd >= 0 else { return }
            _ = ftruncate(fd, 0)  // so no later reader takes this process for the holder
            close(fd)  // closing the only descriptor of the open file releases the flock
            fd = -1
        }
    }

    deinit { release() }
}
