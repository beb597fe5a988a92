import Foundation
import Drivers
@testable import Funnel
import FunnelModel
import FunnelTestSupport
import MailTransport
import TransferEngine
import Testing

struct ConfigTests {
    static let good = """
        ledger = "/var/lib/mailfunnel/ledger.sqlite"

        [daemon]
        poll_interval = "5m"
        max_concurrent_accounts = 8
        metrics_listen = "127.0.0.1:9120"

        [targets.home]
        url = "imaps://me%40example.org@mail.example.org/INBOX"
        password_command = "pass show mail/home"

        [targets.local]
        url = "maildir:/srv/mail/me"

        [[accounts]]
        name = "orange"
        source = "pop3s://jean.dupont@pop.orange.fr"
        password_file = "/etc/mailfunnel/orange.pass"
        target = "home"
        folder = "Orange"
        after_delivery = "delete"
        delete_after = "30d"
        poll_interval = "10m"

        [[accounts]]
        name = "old-imap"
        source = "imaps://jean@imap.example.net"
        folders = ["INBOX", "Sent"]
        idle = true
        target = "home"
        """

    @Test func readsTheDesignExample() throws {
        let c = try Config.parse(Self.good, file: "mf.toml")
        #expect(c.ledger == "/var/lib/mailfunnel/ledger.sqlite")
        #expect(c.daemon.pollInterval == .seconds(300))
        #expect(c.daemon.metricsListen == "127.0.0.1:9120")
        #expect(c.targets["home"]?.url.user == "me@example.org")
        #expect(c.targets["home"]?.url.path == "INBOX")
        #expect(c.targets["home"]?.secret.command == "pass show mail/home")
        #expect(c.accounts.map(\.name) == ["orange", "old-imap"])
        let orange = c.accounts[0]
        #expect(orange.afterDelivery == .delete)
        #expect(orange.deleteAfter == .seconds(30 * 86400))
        #expect(orange.folder == "Orange")
        #expect(orange.line == 15)
        #expect(c.accounts[1].folders == ["INBOX", "Sent"])
        #expect(c.accounts[1].idle)
        #expect(try c.importJobs(accounts: ["orange"], base: TransferOptions()).first?.options.deleteAfter == .seconds(30 * 86400))
        let jobs = try c.importJobs(accounts: ["old-imap"], base: TransferOptions())
        #expect(jobs.count == 1)
        #expect(jobs[0].options.mailboxes == ["INBOX", "Sent"])
        #expect(jobs[0].target.host == "mail.example.org")
    }

    struct BadConfig: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let line: Int?
        let key: String?
        let says: String
        var testDescription: String { name }
    }

    static let bad: [BadConfig] = [
        BadConfig(name: "misspelt key", text: "[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\nafter_delivry = \"delete\"\n",
                  line: 5, key: "accounts[0].after_delivry", says: "did you mean 'after_delivery'"),
        BadConfig(name: "wrong type", text: "[daemon]\npoll_interval = 5\nmax_concurrent_accounts = \"eight\"\n",
                  line: 2, key: "daemon.poll_interval", says: "expected a string"),
        BadConfig(name: "wrong type for a number", text: "[daemon]\nmax_concurrent_accounts = \"eight\"\n",
                  line: 2, key: "daemon.max_concurrent_accounts", says: "expected a whole number"),
        BadConfig(name: "undefined target", text: "[targets.home]\nurl = \"maildir:/m\"\n\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"hom\"\n",
                  line: 7, key: "accounts[0].target", says: "no [targets.hom] is defined; defined: home"),
        BadConfig(name: "bad URL", text: "[targets.home]\nurl = \"imaps://me@host:99999\"\n",
                  line: 2, key: "targets.home.url", says: "bad port '99999'"),
        BadConfig(name: "password in URL", text: "[targets.home]\nurl = \"imaps://me:secret@host\"\n",
                  line: 2, key: "targets.home.url", says: "a password does not belong in a URL"),
        BadConfig(name: "bad duration", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\npoll_interval = \"soon\"\n",
                  line: 7, key: "accounts[0].poll_interval", says: "is not a duration"),
        BadConfig(name: "bad after_delivery", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\nafter_delivery = \"purge\"\n",
                  line: 7, key: "accounts[0].after_delivery", says: "'purge' is not one of keep, mark-seen, delete"),
        BadConfig(name: "missing source", text: "[targets.t]\nurl = \"maildir:/m\"\n\n[[accounts]]\nname = \"a\"\ntarget = \"t\"\n",
                  line: 4, key: "accounts[0].source", says: "needs a source URL"),
        BadConfig(name: "duplicate account", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/y\"\ntarget = \"t\"\n",
                  line: 8, key: "accounts[1].name", says: "a second account named 'a'"),
        BadConfig(name: "two accounts on one source", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\n[[accounts]]\nname = \"b\"\nsource = \"mbox:/x\"\ntarget = \"t\"\n",
                  line: 9, key: "accounts[1].source", says: "account 'a' already reads mbox:/x"),
        BadConfig(name: "two secrets", text: "[targets.t]\nurl = \"maildir:/m\"\npassword_file = \"/a\"\npassword_command = \"b\"\n",
                  line: nil, key: "targets.t.password", says: "only one of"),
        BadConfig(name: "delete_after without delete", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"mbox:/x\"\ntarget = \"t\"\ndelete_after = \"30d\"\n",
                  line: 7, key: "accounts[0].delete_after", says: "only means something with after_delivery"),
        BadConfig(name: "TOML syntax", text: "ledger = \"/x\"\n[daemon\npoll_interval = \"5m\"\n",
                  line: 2, key: nil, says: "not valid TOML"),
        BadConfig(name: "unknown table", text: "[deamon]\npoll_interval = \"5m\"\n",
                  line: 1, key: "deamon", says: "did you mean 'daemon'"),
        BadConfig(name: "unknown login mechanism", text: "[targets.t]\nurl = \"imaps://me@host\"\nauth_mechanisms = [\"PLAIN\", \"DIGEST-MD5\"]\n",
                  line: 3, key: "targets.t.auth_mechanisms", says: "'DIGEST-MD5' is not a login mechanism MailFunnel knows (known: SCRAM-SHA-256, "),
        BadConfig(name: "login mechanisms not a list", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"imaps://u@h\"\ntarget = \"t\"\nauth_mechanisms = \"PLAIN\"\n",
                  line: 7, key: "accounts[0].auth_mechanisms", says: "expected a list of names such as [\"PLAIN\"]"),
        BadConfig(name: "no login mechanism", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"imaps://u@h\"\ntarget = \"t\"\nauth_mechanisms = []\n",
                  line: 7, key: "accounts[0].auth_mechanisms", says: "is empty"),
        // Found by FuzzConfig: toml++ asserts (the process aborts) on a table header with no name.
        BadConfig(name: "table header with no name", text: "[targets.t]\nurl = \"maildir:/m\"\n[\nmax_concurrent_accounts = \"eight\"\n",
                  line: 3, key: nil, says: "a table header is a name in brackets"),
        BadConfig(name: "array table header with no name", text: "ledger = \"/l\"\n  [[  # accounts\n", line: 2, key: nil,
                  says: "a table header is a name in brackets"),
        BadConfig(name: "table header that begins with a bracket", text: "[[[Ltargets.t]\nurl = \"x\"\n", line: 1, key: nil,
                  says: "a table header is a name in brackets"),
        BadConfig(name: "table header with a carriage return", text: "[\r d]\n", line: 1, key: nil,
                  says: "a table header is a name in brackets"),
        // Found by FuzzConfig: toml++ asserts on an array whose next value would begin with '}'.
        BadConfig(name: "array closed by a brace", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nlogin_mechanisms = [}\n",
                  line: 4, key: nil, says: "an array is values in brackets"),
        BadConfig(name: "array closed by a brace after a comma", text: "ledger = \"/l\"\nx = [\"a\",  # one\n }\n", line: 3, key: nil,
                  says: "an array is values in brackets"),
        BadConfig(name: "array in an inline table closed by a brace", text: "x = {a = [ }}\n", line: 1, key: nil,
                  says: "an array is values in brackets"),
        // Found by FuzzConfig: after a byte order mark, the first line's header went unchecked.
        BadConfig(name: "table header after a byte order mark", text: "\u{FEFF}[\u{FFFD}arg]\n", line: 1, key: nil,
                  says: "a table header is a name in brackets"),
        BadConfig(name: "array closed by a brace after a byte order mark", text: "\u{FEFF}[}\n", line: 1, key: nil,
                  says: "a table header is a name in brackets"),
        // Found by FuzzConfig: a line ended by CRLF was not a line, so the header check missed it.
        BadConfig(name: "table header with no name, CRLF", text: "ledger = \"/l\"\r\n[\r\n", line: 2, key: nil,
                  says: "a table header is a name in brackets"),
        BadConfig(name: "bad value, CRLF", text: "[targets.t]\r\nurl = \"imaps://me@host\"\r\ntimeout = \"soon\"\r\n",
                  line: 3, key: "targets.t.timeout", says: "'soon' is not a duration"),
        // Found by FuzzConfig: a triple quote in a comment was taken to open a multi-line string.
        BadConfig(name: "table header after a comment with a triple quote", text: "#\"\"\"@\n    [$\t\r\ts t\n", line: 2, key: nil,
                  says: "a table header is a name in brackets"),
        // Found by FuzzConfig: toml++ asserts on a date followed by a blank and a digit.
        BadConfig(name: "a date", text: "[targets.t]\nurl = \"maildir:/m\"\ntimeout = 1999-06-01 0\n", line: 3, key: nil,
                  says: "a date, and no setting takes one"),
        BadConfig(name: "a date in an array", text: "x = [1, 1999-06-01 0]\n", line: 1, key: nil, says: "a date, and no setting takes one"),
        // Found by FuzzConfig: toml++ takes U+0085 and U+2028 for line ends and asserts in an array.
        BadConfig(name: "a Unicode line break in an array", text: "[targets.t]\nauth_mechanisms = [\u{85}]\n", line: 2, key: nil,
                  says: "a character TOML allows only inside quotes"),
        BadConfig(name: "a line separator in an array", text: "x = [ \u{2028} ]\n", line: 1, key: nil,
                  says: "a character TOML allows only inside quotes"),
        BadConfig(name: "a key not in ASCII", text: "[targets.t]\nclé = \"x\"\n", line: 2, key: nil,
                  says: "a character TOML allows only inside quotes"),
        BadConfig(name: "timeout not a duration", text: "[targets.t]\nurl = \"imaps://me@host\"\ntimeout = \"soon\"\n",
                  line: 3, key: "targets.t.timeout", says: "'soon' is not a duration"),
        BadConfig(name: "timeout under a second", text: "[targets.t]\nurl = \"maildir:/m\"\n[[accounts]]\nname = \"a\"\nsource = \"imaps://u@h\"\ntarget = \"t\"\ntimeout = \"0s\"\n",
                  line: 7, key: "accounts[0].timeout", says: "must be at least 1s"),
    ]

    /// `timeout` on an account (its source) and on a target becomes the read timeout of the
    /// endpoints; without it, the default (120 s).
    @Test func timeoutsReachTheEndpoints() throws {
        let text = """
            [targets.home]
            url = "imaps://me@mail.example.org/INBOX"
            timeout = "5m"

            [[accounts]]
            name = "slow"
            source = "pop3s://jean@pop.example.net"
            timeout = "30s"
            target = "home"
            """
        let c = try Config.parse(text, file: "mf.toml")
        let job = try #require(try c.importJobs(accounts: [], base: TransferOptions()).first)
        #expect(try job.sourceSettings.endpoint(for: job.source, who: "a").readTimeout == .seconds(30))
        #expect(try job.targetSettings.endpoint(for: job.target, who: "t").readTimeout == .seconds(300))
        let plain = try Config.parse("[targets.t]\nurl = \"imaps://me@host\"\n[[accounts]]\nname = \"a\"\nsource = \"imaps://u@h\"\ntarget = \"t\"\n",
                                     file: "mf.toml")
        let defaults = try #require(try plain.importJobs(accounts: [], base: TransferOptions()).first)
        #expect(try defaults.sourceSettings.endpoint(for: defaults.source, who: "a").readTimeout == .seconds(120))
    }

    /// `auth_mechanisms` on an account (its source) and on a target reach the endpoints the
    /// clients log in to, in the order given.
    @Test func authMechanismsReachTheEndpoints() throws {
        let text = """
            [targets.home]
            url = "imaps://me@mail.example.org/INBOX"
            auth_mechanisms = ["PLAIN"]

            [[accounts]]
            name = "mailutils"
            source = "pop3s://jean@pop.example.net"
            auth_mechanisms = ["login", "SCRAM-SHA-256"]
            target = "home"
            """
        let c = try Config.parse(text, file: "mf.toml")
        let job = try #require(try c.importJobs(accounts: [], base: TransferOptions()).first)
        #expect(try job.sourceSettings.endpoint(for: job.source, who: "a").loginMethods == [.sasl(.login), .command, .sasl(.scramSHA256)])
        #expect(try job.targetSettings.endpoint(for: job.target, who: "t").loginMethods == [.sasl(.plain)])
        let plain = try Config.parse("[targets.t]\nurl = \"imaps://me@host\"\n", file: "mf.toml")
        #expect(plain.targets["t"]?.loginMethods == nil)
    }

    @Test(arguments: bad)
    func namesFileLineAndKey(_ f: BadConfig) throws {
        do {
            _ = try Config.parse(f.text, file: "/etc/mf.toml")
            Issue.record("accepted a bad config")
        } catch let FunnelError.config(file, line, key, message) {
            #expect(file == "/etc/mf.toml")
            if let expected = f.line { #expect(line == expected) }
            #expect(key == f.key)
            #expect(message.contains(f.says), "message was: \(message)")
            #expect(FunnelError.config(file: file, line: line, key: key, message: message).exitStatus == .config)
        }
    }

    @Test func refusesAPasswordOthersCanRead() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("mf.toml")
        try dir.write("mf.toml", Array("[targets.t]\nurl = \"maildir:/m\"\npassword = \"hunter2\"\n".utf8))
        chmod(path, 0o644)
        do {
            _ = try Config.load(path: path)
            Issue.record("accepted a world-readable password")
        } catch let FunnelError.config(_, _, _, message) {
            #expect(message.contains("chmod 600 \(path)"))
            #expect(!message.contains("hunter2"))
        }
        chmod(path, 0o600)
        let c = try Config.load(path: path)
        #expect(c.targets["t"]?.secret.inline == "hunter2")
        #expect(!"\(c.targets["t"]!.secret)".contains("hunter2"))
    }

    /// The documented example in etc/ stays valid: docs and parser cannot drift apart.
    @Test func theExampleConfigParses() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/mailfunnel.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let c = try Config.parse(text, file: path)
        #expect(c.accounts.map(\.name) == ["old-archive", "laptop-maildir"])
        #expect(c.accounts[1].afterDelivery == .delete)
        #expect(c.accounts[1].folders == ["INBOX", "Sent"])
        let jobs = try c.importJobs(accounts: [], base: TransferOptions())
        #expect(jobs.map(\.options.targetMailbox) == ["Old/Archive", nil])
    }

    @Test func durations() {
        // Found by FuzzConfig: days that overflow in seconds trapped the process.
        #expect(parseDuration("6887739074256335303d") == nil)
        #expect(parseDuration("9223372036854775807s") == .seconds(Int64.max))
        #expect(parseDuration("90s") == .seconds(90))
        #expect(parseDuration("5m") == .seconds(300))
        #expect(parseDuration("2h") == .seconds(7200))
        #expect(parseDuration("30d") == .seconds(2_592_000))
        #expect(parseDuration("45") == .seconds(45))
        #expect(parseDuration("-5m") == nil)
        #expect(parseDuration("m") == nil)
    }
}

struct MailURLTests {
    @Test(arguments: [
        ("imaps://jean@imap.example.net", "imaps://jean@imap.example.net"),
        ("imap://me%40example.org@mail.example.org:1143/Old/Folder", "imap://me%40example.org@mail.example.org:1143/Old/Folder"),
        ("pop3s://jean.dupont@pop.orange.fr:995", "pop3s://jean.dupont@pop.orange.fr"),
        ("smtp://smtp.example.org", "smtp://smtp.example.org"),
        ("IMAPS://u@[::1]:9993", "imaps://u@[::1]:9993"),
        ("maildir:/srv/mail", "maildir:/srv/mail"),
        ("mbox:/a/b.mbox?format=mboxo", "mbox:/a/b.mbox?format=mboxo"),
    ])
    func parsesToCanonicalForm(text: String, canonical: String) throws {
        #expect(try MailURL.parse(text).description == canonical)
    }

    @Test(arguments: [
        ("imap.example.org", "no scheme"),
        ("ftp://x", "unknown scheme 'ftp'"),
        ("imaps://host", "no user name"),
        ("imaps://u@host:0", "bad port '0'"),
        ("imaps://u@host:abc", "bad port 'abc'"),
        ("pop3://u@host/INBOX", "take no folder"),
        ("maildir:", "no path"),
        ("mbox:/x?format=mboxcl", "unknown format"),
        ("imaps://u@", "no host name"),
        ("imaps:/u@host", "expected 'imaps://host'"),
    ])
    func refusesBadURLs(text: String, says: String) {
        do {
            _ = try MailURL.parse(text)
            Issue.record("accepted \(text)")
        } catch let error as FunnelError {
            #expect(error.exitStatus == .usage)
            #expect(error.description.contains(says), "said: \(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func neverEchoesAPassword() {
        do {
            _ = try MailURL.parse("imaps://jean:s3cret@imap.example.net")
            Issue.record("accepted a password in a URL")
        } catch {
            #expect(!"\(error)".contains("s3cret"))
            #expect("\(error)".contains("<redacted>"))
        }
    }
}
