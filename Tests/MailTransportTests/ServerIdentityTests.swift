@testable import MailTransport
import Testing

/// Which DNS names of a certificate name a server reached by name (RFC 6125).
struct ServerIdentityTests {
    @Test(arguments: [
        ("imap.example.net", ["imap.example.net"]),
        ("IMAP.Example.NET", ["imap.example.net"]),
        ("imap.example.net.", ["imap.example.net"]),
        ("imap.example.net", ["other.example.net", "*.example.net"]),
        ("localhost", ["localhost"]),
    ])
    func aNameTheCertificateHoldsIsAccepted(_ host: String, _ names: [String]) {
        #expect(ServerIdentity.names(host, in: names))
    }

    @Test(arguments: [
        ("localhost", ["mail.other.example"]),
        ("vm", []),
        ("example.net", ["*.example.net"]),
        ("a.b.example.net", ["*.example.net"]),
        ("imap.com", ["*.com"]),
        ("imap.example.net", ["im*.example.net"]),
        ("imap.example.net", ["imap.*.net"]),
        ("imap..example.net", ["imap..example.net"]),
        ("imap.example.net", ["imap.example.net.evil"]),
    ])
    func anotherNameIsRefused(_ host: String, _ names: [String]) {
        #expect(!ServerIdentity.names(host, in: names))
    }

    @Test func theRefusalSaysWhomTheCertificateIsFor() {
        #expect(ServerIdentity.mismatch("localhost", dnsNames: ["mail.other.example"], addresses: ["127.0.0.1"])
                == "it is for mail.other.example, 127.0.0.1, not localhost")
    }
}
