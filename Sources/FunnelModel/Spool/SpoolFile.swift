import Crypto
import Foundation
import MailMessage
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An anonymous file (O_TMPFILE where the file system supports it, else created and unlinked at
/// once), so a crash leaves nothing behind.
final class SpoolFile {
    let fd: Int32
    private(set) var length: Int64 = 0
    private let directory: String

    init(directory: String) throws {
        self.directory = directory
        // O_TMPFILE is (__O_TMPFILE | O_DIRECTORY) on Linux; Swift does not import the macro.
        let oTmpfile: Int32 = 0o20000000 | O_DIRECTORY
        var fd = open(directory, oTmpfile | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            var template = Array("\(directory)/mailfunnel-spool-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw posixError("create spool file in", directory) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        self.fd = fd
    }

    deinit { close(fd) }

    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try append($0) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let n = pwrite(fd, base + offset, bytes.count - offset, off_t(length) + off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("write spool file in", directory)
            }
            offset += n
        }
        length += Int64(bytes.count)
    }

    /// Up to `maxLength` bytes from `offset`.
    func read(at offset: Int64, maxLength: Int) throws -> ByteBuffer {
        let want = Int(max(0, min(Int64(maxLength), length - offset)))
        var buffer = ByteBufferAllocator().buffer(capacity: want)
        var done = 0
        while done < want {
            var n = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want - done) { ptr in
                n = pread(fd, ptr.baseAddress!, want - done, off_t(offset) + off_t(done))
                return max(n, 0)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("read spool file in", directory)
            }
            if n == 0 { throw FunnelError.io(path: directory, operation: "read spool file (truncated) in", errno: EIO) }
            done += n
        }
        return buffer
    }

    func forEachChunk(chunkSize: Int, _ body: (ByteBuffer) throws -> Void) throws {
        var offset: Int64 = 0
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize)
        while offset < length {
            buffer.clear()
            let want = Int(min(Int64(chunkSize), length - offset))
            var n = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { ptr in
                n = pread(fd, ptr.baseAddress!, want, off_t(offset))
                return max(n, 0)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("read spool file in", directory)
            }
            if n == 0 { throw FunnelError.io(path: directory, operation: "read spool file (truncated) in", errno: EIO) }
            offset += Int64(n)
            try body(buffer)
        }
    }
}
