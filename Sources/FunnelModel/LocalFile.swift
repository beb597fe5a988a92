import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A read-only file read in large chunks with `pread`, for mbox and Maildir sources.
package final class LocalFile {
    package let path: String
    package let fd: Int32

    package init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("open", path) }
    }

    deinit { close(fd) }

    package var size: Int64 {
        get throws {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw posixError("stat", path) }
            return Int64(st.st_size)
        }
    }

    /// What tells one state of a file from another: the file (device and inode), its size, and
    /// its status change time, which every write moves and which, unlike the modification time,
    /// no program can set back.
    package struct Version: Equatable {
        package var device: UInt64
        package var inode: UInt64
        package var size: Int64
        package var changed: timespec

        package static func == (a: Version, b: Version) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    package var version: Version {
        get throws {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw posixError("stat", path) }
            return Version(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), changed: st.st_ctim)
        }
    }

    /// Reads what is at `offset` into `buffer`; returns how many bytes came (0 at the end).
    package func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = pread(fd, buffer.baseAddress!, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw posixError("read", path) }
        }
    }

    /// Calls `body` with the bytes of `[offset, offset+length)` (to the end when length is nil), in order.
    package func read(from offset: Int64 = 0, length: Int64? = nil, chunkSize: Int = 256 << 10,
              _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        // A message shorter than a chunk gets a buffer its size (mbox fetches read one at a time).
        let size = max(1, length.map { Int(min(Int64(chunkSize), $0)) } ?? chunkSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var position = offset
        let end = length.map { offset + $0 }
        while true {
            var want = size
            if let end { want = Int(min(Int64(size), end - position)) }
            if want <= 0 { return }
            let n = pread(fd, buffer.baseAddress!, want, off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("read", path)
            }
            if n == 0 {
                if end != nil { throw FunnelError.badSource(path, reason: "the file became shorter while being read") }
                return
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            position += Int64(n)
        }
    }
}

/// An absolute, tidied path for identities and messages (`~` expanded, relative paths made absolute).
package func absolutePath(_ path: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    let absolute = expanded.hasPrefix("/") ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
    return (absolute as NSString).standardizingPath
}
