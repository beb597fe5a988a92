import Foundation
import Logging
import MailTransport
import Synchronization
import Testing

/// Hands out a stale secret first and the good one when renewed, as an OAuth2 provider whose
/// access token expired would; counts what it is asked.
final class RenewingCredentials: CredentialProvider {
    let user: String, stale: String, fresh: String?
    let asked = Mutex(0), renewals = Mutex(0)

    init(user: String, stale: String, fresh: String?) {
        self.user = user
        self.stale = stale
        self.fresh = fresh
    }

    func credentials() async throws -> Credentials {
        asked.withLock { $0 += 1 }
        return Credentials(user: user, password: stale)
    }

    func renewed(after refused: Credentials) async throws -> Credentials? {
        renewals.withLock { $0 += 1 }
        return fresh.map { Credentials(user: user, password: $0) }
    }
}

/// Every login asks its `CredentialProvider`, and a refusal asks it once more, against Dovecot's
/// IMAP and POP3 and Postfix's submission (which asks Dovecot).
extension Dovecot {
@Suite struct CredentialProviderTests {
    let servers: TestServers
    let logger = Logger(label: "test")

    init() throws {
        servers = try TestServers.load()
    }

    func endpoint(_ key: String, _ tls: TLSMode) throws -> ServerEndpoint {
        ServerEndpoint(host: "127.0.0.1", port: try servers.port(key), tls: tls, caFile: servers.caFile)
    }

    @Test func aRefusedLoginIsTriedOnceMoreWithRenewedCredentials() async throws {
        let imap = RenewingCredentials(user: "source", stale: "expired", fresh: servers.password("source"))
        let c = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT", .implicit), login: imap, logger: logger)
        await c.logout()
        #expect(imap.asked.withLock { $0 } == 1 && imap.renewals.withLock { $0 } == 1)

        let pop = RenewingCredentials(user: "source", stale: "expired", fresh: servers.password("source"))
        let p = try await POP3Client.open(try endpoint("MF_POP3S_PORT", .implicit), login: pop, logger: logger)
        try await p.quit()
        #expect(pop.asked.withLock { $0 } == 1 && pop.renewals.withLock { $0 } == 1)

        let smtp = RenewingCredentials(user: "source", stale: "expired", fresh: servers.password("source"))
        let s = try await SMTPClient.open(try endpoint("MF_SMTPS_PORT", .implicit), login: smtp, heloName: "localhost", logger: logger)
        await s.quit()
        #expect(smtp.asked.withLock { $0 } == 1 && smtp.renewals.withLock { $0 } == 1)
    }

    /// A provider with nothing new to offer (a password) is not tried twice: the refusal stands.
    @Test func aRefusalWithNothingRenewedStands() async throws {
        let none = RenewingCredentials(user: "source", stale: "wrong", fresh: nil)
        await #expect(throws: LoginFailure.self) {
            _ = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT", .implicit), login: none, logger: logger)
        }
        #expect(none.asked.withLock { $0 } == 1 && none.renewals.withLock { $0 } == 1)
        await #expect(throws: LoginFailure.self) {
            _ = try await IMAPClient.open(try endpoint("MF_IMAPS_PORT", .implicit),
                                          login: FixedCredentials(Credentials(user: "source", password: "wrong")), logger: logger)
        }
    }

    /// A refusal that is the server's state (a temporary failure) is not a reason to renew.
    @Test func aTemporaryRefusalIsNotACredentialRefusal() {
        let temporary = POP3Error.authenticationFailed(server: "s", user: "u", code: "SYS/TEMP", text: "try later")
        let refused = POP3Error.authenticationFailed(server: "s", user: "u", code: "AUTH", text: "bad password")
        #expect(!temporary.refusedCredentials && refused.refusedCredentials)
    }
}
}
