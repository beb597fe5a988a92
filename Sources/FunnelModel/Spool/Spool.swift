import Crypto
import Foundation
import MailMessage
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Collects one message as it streams in: in memory up to `memoryLimit`, in an anonymous temporary
/// file beyond, hashing (SHA-256) and scanning headers on the way, so memory stays bounded whatever
/// the message size.
///
/// When the sink needs CRLF, the bytes are normalised on the way in and the hash is of the
/// normalised bytes: the ledger's SHA-256 is always of what is sent.
public final class Spool {
    public struct Options: Sendable {
        public var directory: String
        public var memoryLimit: Int
        public var normalizeToCRLF: Bool
        public var headerLimit: Int
        /// Shared by the spools of one transfer: what they may hold in memory together. A spool
        /// that would go over it writes to its temporary file instead.
        public var budget: SpoolBudget?

        public init(directory: String = Spool.defaultDirectory, memoryLimit: Int = 1 << 20,
                    normalizeToCRLF: Bool = false, headerLimit: Int = HeaderScanner.defaultLimit,
                    budget: SpoolBudget? = nil) {
            self.directory = directory
            self.memoryLimit = memoryLimit
            self.normalizeToCRLF = normalizeToCRLF
            self.headerLimit = headerLimit
            self.budget = budget
        }
    }

    public static var defaultDirectory: String {
        ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    private let options: Options
    private var hasher = SHA256()
    /// The hash of the bytes as they came in: nil while normalising has changed nothing (the two
    /// hashes are then the same, and one pass of SHA-256 serves both), forked from `hasher` at the
    /// first chunk it changes.
    private var sourceHasher: SHA256?
    /// Whether the source's bytes are hashed too when normalising changes them (`sourceSHA256`).
    /// A source that knows its bytes are still the ones it listed turns this off (`trustSource`).
    private var hashesSource = true
    private var headers: HeaderScanner
    private var normalizer = CRLFNormalizer()
    private var memory: ByteBuffer
    private var file: SpoolFile?
    private var size = 0
    /// The memory this spool holds against the budget; returned when the message is gone.
    private var lease: SpoolBudget.Lease?

    public init(options: Options) {
        self.options = options
        self.headers = HeaderScanner(limit: options.headerLimit)
        self.memory = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// What a message of `expectedSize` announced bytes will hold in memory once spooled: the
    /// buffer `reserve` asks for, as NIO allocates it (a power of two); nothing for one that goes
    /// to its file. What prefetching plans with, so the plan matches the budget.
    public static func memoryCost(expectedSize: Int, options: Options) -> Int {
        guard expectedSize <= options.memoryLimit else { return 0 }
        let capacity = reservation(expectedSize, options: options)
        return capacity <= 1 ? capacity : 1 << (Int.bitWidth - (capacity - 1).leadingZeroBitCount)
    }

    /// Normalising may add a CR per line: room for that (mbox lines of 40+ bytes).
    private static func reservation(_ expectedSize: Int, options: Options) -> Int {
        min(options.memoryLimit, expectedSize + (options.normalizeToCRLF ? expectedSize / 32 + 64 : 0))
    }

    /// Says how large the message will be (when the source knows), so the in-memory copy is
    /// allocated once instead of growing by doubling.
    public func reserve(_ expectedSize: Int) {
        guard file == nil, expectedSize > memory.capacity, expectedSize <= options.memoryLimit else { return }
        let capacity = Self.reservation(expectedSize, options: options)
        guard mayHold(Self.memoryCost(expectedSize: expectedSize, options: options)) else { return }
        if memory.readableBytes == 0 {
            // A fresh buffer: growing one would copy it at every doubling.
            memory = ByteBufferAllocator().buffer(capacity: capacity)
        } else {
            memory.reserveCapacity(capacity)
        }
    }

    /// Whether the budget lets this spool hold `bytes` in memory (taking them if so).
    private func mayHold(_ bytes: Int) -> Bool {
        guard let budget = options.budget else { return true }
        let held = lease?.bytes ?? 0
        guard bytes > held else { return true }
        guard budget.take(bytes - held) else { return false }
        if let lease { lease.bytes = bytes } else { lease = SpoolBudget.Lease(budget, bytes: bytes) }
        return true
    }

    /// Moves what is in memory to the temporary file (the message outgrew memory or the budget).
    private func spill() throws -> SpoolFile {
        let file = try SpoolFile(directory: options.directory)
        try file.append(memory)
        memory = ByteBufferAllocator().buffer(capacity: 0)
        lease = nil
        self.file = file
        return file
    }

    /// Before the first byte: the source vouches for the bytes it is about to give (they are the
    /// ones it listed and named), so they are hashed only as they will be delivered, and
    /// `sourceSHA256` is not computed (it reads as `sha256`).
    package func trustSource() {
        precondition(size == 0, "trustSource before the first byte")
        hashesSource = false
    }

    /// Adds the next chunk of the message.
    public func append(_ chunk: ByteBuffer) throws {
        let bytes = options.normalizeToCRLF ? normalizer.normalize(chunk) : chunk
        if options.normalizeToCRLF {
            chunk.withUnsafeReadableBytes { hashSource($0, changed: bytes.readableBytes != chunk.readableBytes) }
        }
        try store(bytes)
    }

    /// Keeps the hash of the bytes as they came in apart from `hasher` from the first chunk that
    /// normalising changed (until then the two are the same, and `hasher` serves both).
    private func hashSource(_ source: UnsafeRawBufferPointer, changed: Bool) {
        guard hashesSource, sourceHasher != nil || changed else { return }
        if sourceHasher == nil { sourceHasher = hasher }  // identical up to this chunk
        sourceHasher!.update(bufferPointer: source)
    }

    /// Hashes, scans and keeps bytes that are as they will be delivered.
    private func store(_ bytes: ByteBuffer) throws {
        bytes.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        headers.consume(bytes)
        size += bytes.readableBytes

        let needed = memory.readableBytes + bytes.readableBytes
        if let file {
            try file.append(bytes)
        } else if needed > options.memoryLimit || !mayHold(max(needed, memory.capacity)) {
            try spill().append(bytes)
        } else {
            var copy = bytes
            memory.writeBuffer(&copy)
        }
    }

    /// Adds bytes from a raw pointer (for readers that do not hold a ByteBuffer).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard !options.normalizeToCRLF else {
            // Normalised straight into the in-memory copy (mbox → IMAP or SMTP), no buffer between.
            let grown = bytes.count + bytes.count / 16 + 2
            guard file == nil, memory.readableBytes + grown <= options.memoryLimit,
                  mayHold(max(memory.readableBytes + grown, memory.capacity)) else {
                var buffer = ByteBufferAllocator().buffer(capacity: grown)
                hashSource(bytes, changed: normalizer.normalize(bytes, into: &buffer))
                return try store(buffer)
            }
            let start = memory.writerIndex
            hashSource(bytes, changed: normalizer.normalize(bytes, into: &memory))
            let added = memory.writerIndex - start
            memory.withUnsafeReadableBytes { all in
                let fresh = UnsafeRawBufferPointer(rebasing: all[(all.count - added)...])
                hasher.update(bufferPointer: fresh)
                headers.consume(fresh)
            }
            size += added
            return
        }
        // The common local path (mbox, Maildir → Maildir): hash, scan and store straight from
        // the reader's buffer, without an intermediate copy.
        hasher.update(bufferPointer: bytes)
        headers.consume(bytes)
        size += bytes.count
        let needed = memory.readableBytes + bytes.count
        if let file {
            try file.append(bytes)
        } else if needed > options.memoryLimit || !mayHold(max(needed, memory.capacity)) {
            try spill().append(bytes)
        } else {
            memory.writeBytes(bytes)
        }
    }

    /// Ends the message and hands over what was collected.
    public func finish(flags: MessageFlags = MessageFlags(), internalDate: Date? = nil) -> SpooledMessage {
        let digest = hasher.finalize().hexString
        let storage: SpooledMessage.Storage = file.map { .file($0) } ?? .memory(memory)
        let spooled = SpooledMessage(sha256: digest, sourceSHA256: sourceHasher?.finalize().hexString ?? digest, size: size,
                                     headers: headers, flags: flags, internalDate: internalDate, storage: storage)
        spooled.lease = lease
        lease = nil
        return spooled
    }

    /// Whether the message has outgrown memory (for tests and figures).
    public var isOnDisk: Bool { file != nil }
    /// Bytes held in memory right now.
    public var bytesInMemory: Int { memory.readableBytes }
}

/// A complete message, ready to deliver: its bytes (in memory or in a temporary file), SHA-256,
/// size, header facts, and the flags and date it carries.
public final class SpooledMessage {
    enum Storage {
        case memory(ByteBuffer)
        case file(SpoolFile)
    }

    /// The SHA-256 of what is delivered (after line-end normalisation, if any).
    public let sha256: String
    /// The SHA-256 of the bytes as the source gave them (the same as `sha256` unless normalised).
    public let sourceSHA256: String
    public let size: Int
    public let headers: HeaderScanner
    public var flags: MessageFlags
    public var internalDate: Date?
    let storage: Storage

    init(sha256: String, sourceSHA256: String, size: Int, headers: HeaderScanner, flags: MessageFlags,
         internalDate: Date?, storage: Storage) {
        self.sha256 = sha256
        self.sourceSHA256 = sourceSHA256
        self.size = size
        self.headers = headers
        self.flags = flags
        self.internalDate = internalDate
        self.storage = storage
    }

    /// The in-memory bytes counted against the transfer's spool budget, returned on deinit.
    var lease: SpoolBudget.Lease?

    /// The `Message-ID`, parsed from the headers once.
    public private(set) lazy var messageID: String? = headers.messageID

    /// Whether any byte is 8-bit (SMTP then asks for BODY=8BITMIME). A pass over the message, so
    /// only the sink that needs it asks.
    public func contains8Bit() throws -> Bool {
        var found = false
        try forEachChunk { chunk in
            if !found { found = chunk.withUnsafeReadableBytes { $0.contains { $0 >= 0x80 } } }
        }
        return found
    }
    public var isOnDisk: Bool { if case .file = storage { return true } else { return false } }

    /// Calls `body` with the message in order, in chunks of at most `chunkSize` bytes.
    /// At most `maxLength` bytes from `offset` (fewer at the end).
    public func readChunk(at offset: Int, maxLength: Int) throws -> ByteBuffer {
        switch storage {
        case let .memory(buffer):
            let n = min(maxLength, buffer.readableBytes - offset)
            return buffer.getSlice(at: buffer.readerIndex + offset, length: max(0, n)) ?? ByteBuffer()
        case let .file(file):
            return try file.read(at: Int64(offset), maxLength: maxLength)
        }
    }

    public func forEachChunk(chunkSize: Int = 256 << 10, _ body: (ByteBuffer) throws -> Void) throws {
        switch storage {
        case let .memory(buffer):
            var rest = buffer
            while rest.readableBytes > 0, let slice = rest.readSlice(length: min(chunkSize, rest.readableBytes)) {
                try body(slice)
            }
        case let .file(file):
            try file.forEachChunk(chunkSize: chunkSize, body)
        }
    }

    /// The whole message as bytes. Only for tests and small messages: it defeats the spool's purpose.
    public func collect() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(size)
        try forEachChunk { out.append(contentsOf: $0.readableBytesView) }
        return out
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal, two digits a byte.
    package var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Digest {
    package var hexString: String { Array(self).hexString }
}
