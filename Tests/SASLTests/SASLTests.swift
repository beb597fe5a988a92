import Foundation
@testable import SASL
import Testing

struct SASLTests {
    /// RFC 7677 §3's example exchange, byte for byte.
    @Test func scramSHA256MatchesRFC7677() throws {
        var sasl = SASLClient(mechanism: .scramSHA256, credentials: Credentials(user: "user", password: "pencil"),
                              nonce: "rOprNGfwEbeRWgbNEkqO")
        let first = sasl.initialResponse()
        #expect(first.map { String(decoding: $0, as: UTF8.self) } == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let final = try sasl.respond(to: Array(serverFirst.utf8))
        #expect(String(decoding: final, as: UTF8.self)
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        #expect(sasl.awaitingServerFinal)
        try sasl.verifyServerFinal(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        // As IMAP servers send it: a continuation with the server's final message, answered empty.
        var copy = sasl
        #expect(try copy.respond(to: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) == [])
        #expect(!copy.awaitingServerFinal)
        #expect(throws: SASLError.serverSignatureMismatch) {
            try sasl.verifyServerFinal(Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        }
    }

    @Test func scramRefusesANonceThatIsNotOurs() {
        var sasl = SASLClient(mechanism: .scramSHA256, credentials: Credentials(user: "u", password: "p"), nonce: "abc")
        _ = sasl.initialResponse()
        #expect(throws: SASLError.self) { try sasl.respond(to: Array("r=xyz123,s=AAAA,i=4096".utf8)) }
    }

    /// RFC 2195 §2's example.
    @Test func cramMD5MatchesRFC2195() throws {
        var sasl = SASLClient(mechanism: .cramMD5, credentials: Credentials(user: "tim", password: "tanstaaftanstaaf"))
        #expect(sasl.initialResponse() == nil)
        let answer = try sasl.respond(to: Array("<1896.697170952@postoffice.reston.mci.net>".utf8))
        #expect(String(decoding: answer, as: UTF8.self) == "tim b913a602c7eda7a495b4e6e7334d3890")
    }

    @Test func plainLoginAndTokens() throws {
        var plain = SASLClient(mechanism: .plain, credentials: Credentials(user: "jean", password: "s3cret"))
        #expect(plain.initialResponse() == Array("\0jean\0s3cret".utf8))
        var login = SASLClient(mechanism: .login, credentials: Credentials(user: "jean", password: "s3cret"))
        #expect(try login.respond(to: Array("Username:".utf8)) == Array("jean".utf8))
        #expect(try login.respond(to: Array("Password:".utf8)) == Array("s3cret".utf8))
        var x = SASLClient(mechanism: .xoauth2, credentials: Credentials(user: "me@example.org", oauthToken: "ya29.tok"))
        #expect(x.initialResponse() == Array("user=me@example.org\u{1}auth=Bearer ya29.tok\u{1}\u{1}".utf8))
        var o = SASLClient(mechanism: .oauthBearer, credentials: Credentials(user: "a,b=c", oauthToken: "tok"))
        #expect(o.initialResponse() == Array("n,a=a=2Cb=3Dc,\u{1}auth=Bearer tok\u{1}\u{1}".utf8))
    }

    @Test func credentialsNeverPrintTheirSecret() {
        let c = Credentials(user: "jean", password: "hunter2")
        #expect(!"\(c)".contains("hunter2"))
        #expect(!String(describing: [c]).contains("hunter2"))
    }
}
