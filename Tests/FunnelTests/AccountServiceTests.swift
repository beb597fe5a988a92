@testable import Funnel
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
