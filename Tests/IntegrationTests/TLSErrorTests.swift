import Foundation
import Testing

extension Dovecot {
    /// What a TLS problem reads as, against the real Dovecot: each says what is wrong and what to do.
    @Suite struct TLSErrorTests {
        let servers: TestServers

        init() throws {
            servers = try TestServers.load()
        }

        func importing(_ source: String, _ dir: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try mailfunnel(["import", source, "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--ca-file", servers.caFile,
                            "--source-password-file", try servers.passwordFile("source", in: dir), "--timeout", "10s"])
        }

        /// A trusted certificate for mail.other.example and the loopback addresses: reached as
        /// localhost (which resolves to one of those addresses) it is refused, naming what it is
        /// for; reached by the address itself, it is the right certificate.
        @Test func aCertificateForAnotherNameIsRefusedNamingIt() throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let port = try servers.port("MF_MISNAMED_IMAPS_PORT")
            let byName = try importing("imaps://source@localhost:\(port)", dir)
            #expect(byName.status == 69, "stderr: \(byName.stderr)")
            #expect(byName.stderr.contains("the server's certificate does not name this server (it is for mail.other.example, 127.0.0.1, ::1, not localhost)"),
                    "stderr: \(byName.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/M"))
            let byAddress = try importing("imaps://source@127.0.0.1:\(port)", dir)
            #expect(byAddress.status == 0, "stderr: \(byAddress.stderr)")
        }

        @Test func implicitTLSToAPlainTextPortSaysSo() throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let r = try importing("imaps://source@127.0.0.1:\(try servers.port("MF_IMAP_DIRECT_PORT"))", dir)
            #expect(r.status == 69, "stderr: \(r.stderr)")
            #expect(r.stderr.contains("; this port may be for plain text or STARTTLS"), "stderr: \(r.stderr)")
            #expect(!r.stderr.contains("tls_record.cc"), "stderr: \(r.stderr)")
        }

        @Test func aPortNobodyListensOnIsConnectionRefused() throws {
            let dir = try workDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // A port just free: bound, then closed.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            let port = Int(UInt16(bigEndian: address.sin_port))
            close(fd)
            #expect(port > 0)
            let r = try importing("imaps://source@127.0.0.1:\(port)", dir)
            #expect(r.status == 69, "stderr: \(r.stderr)")
            #expect(r.stderr.contains("cannot connect to 127.0.0.1:\(port): connection refused"), "stderr: \(r.stderr)")
        }
    }
}
