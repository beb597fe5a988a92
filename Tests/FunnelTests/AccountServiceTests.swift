import Drivers
@testable import Funnel
import FunnelModel
import Logging
import TransferEngine
import IMAPCore
import MailTransport
import Testing

struct AccountServiceTests {
    @Test func backoffGrowsAndIsCapped() {
        #expect(AccountService.backoff(failures: 1, cap: .seconds(3600)) == .seconds(30))
        #expect(AccountService.backoff(failures: 3, cap: .seconds(3600)) == .seconds(120))
        #expect(AccountService.backoff(failures: 20, cap: .seconds(3600)) == .seconds(3600))
    }

    @Test func jitterStaysWithinTenPercent() {
        for _ in 0..<100 {
            let d = AccountService.jittered(.seconds(300))
            #expect(d >= .seconds(270) && d <= .seconds(330))
        }
    }

    @Test func serverHintsLengthenTheWait() {
        let ms = IMAPError.authenticationFailed(server: "outlook.office365.com:993", user: "u",
                                                text: "AUTHENTICATE failed. Suggested Backoff Time: 299000 milliseconds")
        #expect(AccountService.serverHint(ms) == .milliseconds(299_000))
        let throttled = IMAPError.commandFailed(server: "s", command: "LOGIN", status: .no, code: .throttled, text: "slow down", mailbox: nil)
        #expect(AccountService.serverHint(throttled) == .seconds(60))
        let delay = POP3Error.authenticationFailed(server: "s", user: "u", code: "LOGIN-DELAY", text: "too soon")
        #expect(AccountService.serverHint(delay) == .seconds(900))
        let inUse = POP3Error.commandFailed(server: "s", command: "PASS", code: "IN-USE", text: "locked")
        #expect(AccountService.serverHint(inUse) == .seconds(60))
        #expect(AccountService.serverHint(TransportError.closedByPeer(endpoint: "s")) == nil)
    }
}

/// The daemon's schedule rows and a run's message rows name an account the same way, whatever the
/// URL's spelling: otherwise `mailfunnel status` shows one account twice.
struct AccountIdentityTests {
    static let urls = ["mbox:/var/mail/old.mbox?format=mboxo", "mbox:/var/mail/old.mbox", "maildir:/var/mail/Old/",
                       "maildir:/var/mail/Old", "imaps://jean@imap.example.net/INBOX", "imap://jean@imap.example.net:1143",
                       "pop3s://jean.dupont@pop.example.fr"]
    static let targets = ["maildir:/tmp/new/", "maildir:/tmp/new", "imaps://jean@imap.example.net/Archive",
                          "smtp://relay.example.net:2525"]

    @Test(arguments: urls, targets) func theDaemonNamesAnAccountAsItsTransferDoes(_ text: String, _ targetText: String) throws {
        let url = try MailURL.parse(text), target = try MailURL.parse(targetText)
        var settings = EndpointSettings(passwordVariable: "UNUSED")
        settings.secret = Secret(inline: "pw")
        settings.envelopeTo = "jean@example.org"
        let job = ImportJob(name: "old", source: url, target: target, options: TransferOptions())
        let service = AccountService(job: job, ledger: MemoryLedger(), locks: nil, logger: Logger(label: "test"), limiter: AccountLimiter(1),
                                     pollInterval: .seconds(60), idle: false)
        let transfer = Transfer(source: try Endpoints.source(url, settings: settings),
                                sink: try Endpoints.sink(target, settings: settings), ledger: MemoryLedger(), options: TransferOptions())
        #expect(service.ledgerAccount == transfer.account)
        #expect(job.accountIdentity == transfer.source.identity)
    }
}
