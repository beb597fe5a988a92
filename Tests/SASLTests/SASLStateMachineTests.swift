import Foundation
import SASL
import Testing

/// Whole exchanges through `SASLStateMachine`: the mechanism chosen, each server step fed in, and
/// the action it gives checked.
struct SASLStateMachineTests {
    static let jean = Credentials(user: "jean", password: "s3cret")

    struct Choice: Sendable, CustomTestStringConvertible {
        var offered: [String]
        var credentials: Credentials
        var chosen: SASLMechanism?
        var testDescription: String { "\(offered) for \(credentials.kind) → \(chosen.map(\.rawValue) ?? "none")" }
    }

    static let choices: [Choice] = [
        Choice(offered: ["LOGIN", "CRAM-MD5", "PLAIN", "SCRAM-SHA-256"], credentials: jean, chosen: .scramSHA256),
        Choice(offered: ["login", "cram-md5", "plain"], credentials: jean, chosen: .plain),
        Choice(offered: ["LOGIN", "CRAM-MD5"], credentials: jean, chosen: .cramMD5),
        Choice(offered: ["GSSAPI", "LOGIN"], credentials: jean, chosen: .login),
        Choice(offered: ["GSSAPI", "XOAUTH2", "OAUTHBEARER"], credentials: jean, chosen: nil),
        Choice(offered: ["PLAIN", "XOAUTH2", "OAUTHBEARER"], credentials: Credentials(user: "me", oauthToken: "t"), chosen: .oauthBearer),
        Choice(offered: ["PLAIN", "XOAUTH2"], credentials: Credentials(user: "me", oauthToken: "t"), chosen: .xoauth2),
        Choice(offered: ["PLAIN", "SCRAM-SHA-256"], credentials: Credentials(user: "me", oauthToken: "t"), chosen: nil),
        Choice(offered: [], credentials: jean, chosen: nil),
    ]

    @Test(arguments: choices) func theStrongestMechanismInCommonIsChosen(_ choice: Choice) {
        var sasl = SASLStateMachine(credentials: choice.credentials)
        let action = sasl.receivedMechanisms(choice.offered, initialResponseInCommand: true)
        if let chosen = choice.chosen {
            guard case let .sendCommand(mechanism, _) = action else { Issue.record("\(action)"); return }
            #expect(mechanism == chosen)
            #expect(sasl.mechanism == chosen)
        } else {
            #expect(action == .noCommonMechanism)
            #expect(sasl.mechanism == nil)
        }
    }

    @Test func plainRidesInTheCommandWhenTheProtocolLetsIt() {
        var sasl = SASLStateMachine(credentials: Self.jean)
        #expect(sasl.receivedMechanisms(["PLAIN"], initialResponseInCommand: true)
                == .sendCommand(mechanism: .plain, initialResponse: Array("\0jean\0s3cret".utf8)))
        #expect(!sasl.answersNextChallengeWithInitialResponse)
        #expect(sasl.receivedOutcome(.success) == .succeeded)
    }

    /// IMAP without SASL-IR: the command goes bare and the first `+` is the go-ahead.
    @Test func withoutRoomInTheCommandTheInitialResponseAnswersTheFirstChallenge() {
        var sasl = SASLStateMachine(credentials: Self.jean)
        #expect(sasl.receivedMechanisms(["PLAIN"], initialResponseInCommand: false) == .sendCommand(mechanism: .plain, initialResponse: nil))
        #expect(sasl.answersNextChallengeWithInitialResponse)
        #expect(sasl.receivedChallenge([]) == .sendResponse(Array("\0jean\0s3cret".utf8)))
        #expect(!sasl.answersNextChallengeWithInitialResponse)
        #expect(sasl.receivedOutcome(.success) == .succeeded)
    }

    @Test func loginAnswersEachPrompt() {
        var sasl = SASLStateMachine(credentials: Self.jean)
        #expect(sasl.receivedMechanisms(["LOGIN"], initialResponseInCommand: false) == .sendCommand(mechanism: .login, initialResponse: nil))
        #expect(!sasl.answersNextChallengeWithInitialResponse)
        #expect(sasl.receivedChallenge(Array("Username:".utf8)) == .sendResponse(Array("jean".utf8)))
        #expect(sasl.receivedChallenge(Array("Password:".utf8)) == .sendResponse(Array("s3cret".utf8)))
        #expect(sasl.receivedOutcome(.success) == .succeeded)
    }

    /// RFC 7677 §3's example exchange, through the state machine.
    @Test func scramSHA256MatchesRFC7677() {
        var sasl = SASLStateMachine(credentials: Credentials(user: "user", password: "pencil"), nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(sasl.chose(.scramSHA256, initialResponseInCommand: true)
                == .sendCommand(mechanism: .scramSHA256, initialResponse: Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8)))
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        #expect(sasl.receivedChallenge(Array(serverFirst.utf8))
                == .sendResponse(Array("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".utf8)))
        #expect(sasl.receivedChallenge(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) == .sendResponse([]))
        #expect(sasl.receivedOutcome(.success) == .succeeded)
    }

    static func scramAfterServerFirst() -> SASLStateMachine {
        var sasl = SASLStateMachine(credentials: Credentials(user: "user", password: "pencil"), nonce: "rOprNGfwEbeRWgbNEkqO")
        _ = sasl.chose(.scramSHA256, initialResponseInCommand: true)
        _ = sasl.receivedChallenge(Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        return sasl
    }

    @Test func aSuccessBeforeTheServerSignatureLeavesTheServerUnverified() {
        var sasl = Self.scramAfterServerFirst()
        #expect(sasl.receivedOutcome(.success) == .serverUnverified)
    }

    @Test func aWrongServerSignatureAbortsTheExchange() {
        var sasl = Self.scramAfterServerFirst()
        #expect(sasl.receivedChallenge(Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) == .abort(.serverSignatureMismatch))
    }

    @Test func aChallengePlainCannotAnswerAbortsTheExchange() {
        var sasl = SASLStateMachine(credentials: Self.jean)
        _ = sasl.receivedMechanisms(["PLAIN"], initialResponseInCommand: true)
        #expect(sasl.receivedChallenge(Array("more".utf8)) == .abort(.unexpectedChallenge("more")))
    }

    @Test func aRefusalIsReported() {
        var sasl = SASLStateMachine(credentials: Self.jean)
        _ = sasl.receivedMechanisms(["CRAM-MD5"], initialResponseInCommand: true)
        #expect(sasl.receivedChallenge(Array("<1896.697170952@postoffice.reston.mci.net>".utf8)) != .refused)
        #expect(sasl.receivedOutcome(.failure) == .refused)
    }
}
