@testable import MailTransport
import SASL
import Testing

/// Logins played through `LoginStateMachine`: what the server offers, each attempt's outcome fed
/// in turn, and the ways tried, in order, checked.
struct LoginStateMachineTests {
    typealias Machine = LoginStateMachine

    /// One login: the machine's inputs, the outcome of each attempt (`nil`: let in), and what must
    /// happen.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var offered: [String]
        var own: [LoginMethod] = [.command]
        var kind: Credentials.Kind = .password
        var chosen: [LoginMethod]? = nil
        var exposingAllowed = true
        /// What the server says to each attempt, in order; nil lets the client in.
        var outcomes: [Machine.Refusal?]
        var tried: [LoginMethod]
        var end: Machine.Action
        var notTried: [LoginMethod] = []
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "the strongest first, let in", offered: ["PLAIN", "SCRAM-SHA-256", "LOGIN"], outcomes: [nil],
             tried: [.sasl(.scramSHA256)], end: .loggedIn),
        Case(name: "Mailutils: SCRAM refused, PLAIN lets in", offered: ["CRAM-MD5", "LOGIN", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"],
             outcomes: [.credentials, nil], tried: [.sasl(.scramSHA256), .sasl(.plain)], end: .loggedIn),
        Case(name: "every way refused: the password as it is is handed over once",
             offered: ["CRAM-MD5", "LOGIN", "PLAIN", "SCRAM-SHA-256"], outcomes: [.credentials, .credentials, .credentials],
             tried: [.sasl(.scramSHA256), .sasl(.plain), .sasl(.cramMD5)], end: .fail(.refused),
             notTried: [.sasl(.login), .command]),
        Case(name: "CRAM-MD5 refused says nothing of PLAIN", offered: ["CRAM-MD5", "PLAIN"], chosen: [.sasl(.cramMD5), .sasl(.plain)],
             outcomes: [.credentials, nil], tried: [.sasl(.cramMD5), .sasl(.plain)], end: .loggedIn),
        Case(name: "a mechanism the server does not take says nothing of the password", offered: ["PLAIN", "LOGIN"],
             outcomes: [.method, .credentials], tried: [.sasl(.plain), .sasl(.login)], end: .fail(.refused), notTried: [.command]),
        Case(name: "temporary: nothing else is tried", offered: ["SCRAM-SHA-256", "PLAIN"], outcomes: [.temporary],
             tried: [.sasl(.scramSHA256)], end: .stopTemporarily),
        Case(name: "SCRAM refused, then the protocol's own command", offered: ["SCRAM-SHA-256"], outcomes: [.credentials, nil],
             tried: [.sasl(.scramSHA256), .command], end: .loggedIn),
        Case(name: "POP3: USER/PASS, then APOP", offered: [], own: [.command, .apop], outcomes: [.credentials, .credentials],
             tried: [.command, .apop], end: .fail(.refused)),
        Case(name: "the user's choice and order", offered: ["SCRAM-SHA-256", "PLAIN", "LOGIN"], chosen: [.sasl(.login), .sasl(.plain)],
             outcomes: [.method, nil], tried: [.sasl(.login), .sasl(.plain)], end: .loggedIn),
        Case(name: "the user's choice, not offered", offered: ["SCRAM-SHA-256"], own: [], chosen: [.sasl(.plain)], outcomes: [],
             tried: [], end: .noCommonMethod),
        Case(name: "no secret in clear where the connection does not allow it", offered: ["PLAIN", "LOGIN", "CRAM-MD5"],
             exposingAllowed: false, outcomes: [.credentials], tried: [.sasl(.cramMD5)], end: .fail(.refused)),
        Case(name: "nothing but clear text, where it is not allowed", offered: ["PLAIN"], exposingAllowed: false, outcomes: [],
             tried: [], end: .noCommonMethod),
        Case(name: "a token: OAUTHBEARER, and XOAUTH2 is the same token as it is", offered: ["PLAIN", "XOAUTH2", "OAUTHBEARER"],
             kind: .oauthToken, outcomes: [.credentials], tried: [.sasl(.oauthBearer)], end: .fail(.refused),
             notTried: [.sasl(.xoauth2)]),
        Case(name: "a token never goes by the protocol's own command", offered: ["PLAIN"], kind: .oauthToken, outcomes: [],
             tried: [], end: .noCommonMethod),
        Case(name: "names in any case", offered: ["plain", "scram-sha-256"], outcomes: [.credentials, nil],
             tried: [.sasl(.scramSHA256), .sasl(.plain)], end: .loggedIn),
    ]

    @Test(arguments: cases) func triesEachWayInTurn(_ c: Case) {
        var machine = Machine(offered: c.offered, own: c.own, credentials: c.kind, chosen: c.chosen, exposingAllowed: c.exposingAllowed)
        var action = machine.start()
        var tried: [LoginMethod] = []
        var outcomes = c.outcomes[...]
        while case let .attempt(method) = action {
            tried.append(method)
            guard let outcome = outcomes.popFirst() else { Issue.record("no outcome for attempt \(tried.count)"); return }
            action = outcome.map { machine.attemptRefused($0, answer: "no") } ?? machine.attemptSucceeded()
        }
        #expect(tried == c.tried)
        #expect(action == c.end)
        #expect(machine.notTried == c.notTried)
        #expect(machine.attempts.map(\.method) == (c.end == .loggedIn ? Array(tried.dropLast()) : tried))
    }

    @Test func aClosedConnectionAfterARefusalEndsTheLogin() {
        var machine = Machine(offered: ["SCRAM-SHA-256", "PLAIN"], own: [], credentials: .password, chosen: nil, exposingAllowed: true)
        #expect(machine.start() == .attempt(.sasl(.scramSHA256)))
        #expect(machine.attemptRefused(.credentials, answer: "NO failed") == .attempt(.sasl(.plain)))
        #expect(machine.connectionClosed() == .fail(.closed))
        #expect(machine.attempts.map(\.answer) == ["NO failed", "the server closed the connection"])
    }

    /// Before any refusal nothing was judged: the connection's own error stands.
    @Test func aClosedConnectionBeforeAnyAnswerIsNotARefusal() {
        var machine = Machine(offered: ["PLAIN"], own: [], credentials: .password, chosen: nil, exposingAllowed: true)
        #expect(machine.start() == .attempt(.sasl(.plain)))
        #expect(machine.connectionClosed() == nil)
    }

    /// An acceptance without SCRAM's server signature: a server not to trust, with nothing else.
    @Test func anUnverifiedServerEndsTheLoginAtOnce() {
        var machine = Machine(offered: ["SCRAM-SHA-256", "PLAIN"], own: [.command], credentials: .password, chosen: nil, exposingAllowed: true)
        #expect(machine.start() == .attempt(.sasl(.scramSHA256)))
        #expect(machine.serverUnverified(answer: "235 ok") == .fail(.serverUnverified))
    }

    @Test func namesInAuthMechanisms() {
        #expect(LoginMethod.named("plain") == [.sasl(.plain)])
        #expect(LoginMethod.named("LOGIN") == [.sasl(.login), .command])
        #expect(LoginMethod.named("apop") == [.apop])
        #expect(LoginMethod.named("GSSAPI") == nil)
        #expect(LoginMethod.parse(["SCRAM-SHA-256", "plain", "PLAIN"]) == .success([.sasl(.scramSHA256), .sasl(.plain)]))
        #expect(LoginMethod.parse(["PLAIN", "DIGEST-MD5"]) == .failure(LoginMethod.UnknownName(name: "DIGEST-MD5")))
    }

    @Test func theFailureNamesEveryWayTriedAndWhatEachGot() {
        let failure = LoginFailure(server: "mail.example.org:993", user: "jean", attempts: [
            LoginAttempt(method: "SCRAM-SHA-256", answer: "NO [AUTHENTICATIONFAILED] Authentication failed."),
            LoginAttempt(method: "PLAIN", answer: "NO [AUTHENTICATIONFAILED] Authentication failed."),
        ], ending: .refused, notTried: ["LOGIN"])
        #expect(failure.description == "mail.example.org:993: login as jean refused (tried SCRAM-SHA-256: NO [AUTHENTICATIONFAILED] "
            + "Authentication failed.; PLAIN: NO [AUTHENTICATIONFAILED] Authentication failed.); not tried: LOGIN (they would hand over "
            + "the password that was refused)")
        #expect(failure.refusedCredentials)
    }
}
