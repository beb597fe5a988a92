import Foundation
import NIOSSL
import Synchronization

/// The TLS client contexts of the process, one for each set of trust roots, shared by every
/// connection: building one reads and parses every trust root, which no connection should pay for.
///
/// A context is kept per CA file and that file's version (device, inode, size, modification and
/// status change times), so a CA file replaced on disk is read again by the next connection; one
/// that failed to build is not kept, so the next connection tries again. The system's roots are read
/// once a process, and again after `forget()` (a daemon's reload), as a daemon usually does.
public enum TLSContexts {
    private struct Key: Hashable {
        var caFile: String?
        var version: [Int]
    }

    private static let contexts = Mutex<[Key: Task<NIOSSLContext, Error>]>([:])

    /// Starts building the context for `caFile` in the background (at start-up, while the ledger
    /// opens), so that it is ready when the first connection asks for it. Errors wait for that
    /// connection, which reports them.
    public static func prepare(caFile: String?) {
        _ = task(caFile)
    }

    /// Forgets every context: the next connections read their trust roots again.
    public static func forget() {
        contexts.withLock { $0.removeAll() }
    }

    /// The context for `endpoint`'s trust roots, built on first use.
    static func context(for endpoint: ServerEndpoint) async throws -> NIOSSLContext {
        let building = task(endpoint.caFile)
        do {
            return try await building.value
        } catch {
            contexts.withLock { contexts in
                for (key, known) in contexts where known == building { contexts[key] = nil }
            }
            throw TransportError.tlsFailed(endpoint: endpoint.description, reason: "cannot load the trust roots\(endpoint.caFile.map { " (\($0))" } ?? ""): \(error)")
        }
    }

    private static func task(_ caFile: String?) -> Task<NIOSSLContext, Error> {
        let key = Key(caFile: caFile, version: caFile.map(version) ?? [])
        return contexts.withLock { contexts in
            if let known = contexts[key] { return known }
            // A CA file's older versions are done with.
            for old in contexts.keys where old.caFile == caFile { contexts[old] = nil }
            let built = Task.detached { try build(caFile) }
            contexts[key] = built
            return built
        }
    }

    /// The file's identity and version; `[-1]` when it cannot be read (building then fails, and
    /// is tried again once the file is there).
    private static func version(_ path: String) -> [Int] {
        var s = stat()
        guard stat(path, &s) == 0 else { return [-1] }
        return [Int(s.st_dev), Int(s.st_ino), Int(s.st_size), Int(s.st_mtim.tv_sec), Int(s.st_mtim.tv_nsec),
                Int(s.st_ctim.tv_sec), Int(s.st_ctim.tv_nsec)]
    }

    private static func build(_ caFile: String?) throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .fullVerification
        config.minimumTLSVersion = .tlsv12
        if let caFile {
            config.additionalTrustRoots = [.file(caFile)]
        }
        return try NIOSSLContext(configuration: config)
    }
}
