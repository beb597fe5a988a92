import Foundation
import Logging
@testable import MailTransport
import Testing

extension Dovecot {
/// The process shares one TLS context per set of trust roots (`TLSContexts`): connections reuse
/// it, and a CA file replaced on disk is read again rather than pinned for the process's life.
@Suite struct TLSContextTests {
    let servers: TestServers
    let dir: String

    init() throws {
        servers = try TestServers.load()
        dir = NSTemporaryDirectory() + "mf-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func endpoint(caFile: String) throws -> ServerEndpoint {
        ServerEndpoint(host: "127.0.0.1", port: try servers.port("MF_IMAPS_PORT"), tls: .implicit, caFile: caFile)
    }

    /// Writes `from`'s contents to `to` as a new file moved into place, as a CA bundle is updated.
    func install(_ from: String, at to: String) throws {
        let staged = to + ".new"
        try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: staged))
        _ = rename(staged, to)
    }

    @Test func connectionsShareAContextUntilTheCAFileChanges() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = dir + "/ca.pem"
        // A CA that did not sign the server's certificate: the handshake is refused.
        try install(servers.dir + "/untrusted-ca.pem", at: ca)
        let wrong = try endpoint(caFile: ca)
        await #expect(throws: TransportError.self) {
            let c = try await IMAPClient.connect(to: wrong, logger: Logger(label: "test"))
            await c.close()
        }
        // The right CA put in its place: the next connection reads it and is let in.
        try install(servers.caFile, at: ca)
        let right = try endpoint(caFile: ca)
        let c = try await IMAPClient.connect(to: right, logger: Logger(label: "test"))
        #expect(c.has("IMAP4REV1"))
        await c.close()
        // While the file stays as it is, every connection gets the same context.
        let first = try await TLSContexts.context(for: right)
        let second = try await TLSContexts.context(for: right)
        #expect(first === second)
    }
}
}
