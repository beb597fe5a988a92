import Foundation
import Testing

/// End-to-end tests of the built `mailfunnel` binary: real files, real exit codes, real output.
struct CommandLineTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The binary: $MAILFUNNEL_BIN, or the debug build of this package.
    static var binary: String {
        ProcessInfo.processInfo.environment["MAILFUNNEL_BIN"]
            ?? packageRoot.appendingPathComponent(".build/debug/mailfunnel").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("no mailfunnel binary at \(Self.binary): build it first (swift build), or set MAILFUNNEL_BIN")
            return Result(status: -1, stdout: "", stderr: "")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        p.environment = env
        // Output goes to files, not pipes: a chatty child can never block on a full pipe.
        let outPath = NSTemporaryDirectory() + "/mf-out-\(UUID().uuidString)"
        let errPath = NSTemporaryDirectory() + "/mf-err-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "/mailfunnel-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func json(_ text: String) throws -> [String: Any] {
        let line = try #require(text.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func files(in maildir: String) -> [String] {
        ["new", "cur"].flatMap { sub in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(maildir)/\(sub)")) ?? []).map { "\(maildir)/\(sub)/\($0)" }
        }
    }

    func contents(_ maildir: String) throws -> [Data] {
        try files(in: maildir).map { try Data(contentsOf: URL(fileURLWithPath: $0)) }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    var sample: String { Self.packageRoot.appendingPathComponent("samples/sample.mbox").path }

    @Test func importsTheSampleThenNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["import", "mbox:\(sample)", "maildir:\(dir)/Maildir", "--ledger", "\(dir)/ledger.sqlite", "--json"]
        let first = try run(args)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let j1 = try json(first.stdout)
        #expect(j1["listed"] as? Int == 41)
        #expect(j1["delivered"] as? Int == 41)
        #expect(j1["failed"] as? Int == 0)
        #expect((j1["bytes"] as? Int ?? 0) > 50_000)
        #expect(files(in: "\(dir)/Maildir").count == 41)
        let second = try run(args)
        #expect(second.status == 0)
        let j2 = try json(second.stdout)
        #expect(j2["listed"] as? Int == 41)
        #expect(j2["delivered"] as? Int == 0)
        #expect(files(in: "\(dir)/Maildir").count == 41)

        // status reads the same ledger.
        let status = try run(["status", "--ledger", "\(dir)/ledger.sqlite", "--json"])
        #expect(status.status == 0)
        let accounts = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
        #expect(accounts.count == 1)
        #expect((accounts[0]["counts"] as? [String: Int])?["delivered"] == 41)
        let table = try run(["status", "--ledger", "\(dir)/ledger.sqlite"])
        #expect(table.stdout.contains("delivered 41"))
    }

    /// At 80 columns every help text is wrapped once, as ArgumentParser does (at 79): no line
    /// broken before the next word would have had to go (text wrapped by hand and again by the
    /// parser). The usage line is not wrapped.
    @Test(arguments: [["--help"], ["import", "--help"], ["run", "--help"], ["check", "--help"], ["status", "--help"]])
    func helpIsWrappedOnceAt80Columns(_ arguments: [String]) throws {
        let r = try run(arguments, environment: ["COLUMNS": "80"])
        #expect(r.status == 0)
        let lines = r.stdout.components(separatedBy: "\n")
        for (i, line) in lines.enumerated() {
            guard !line.hasPrefix("USAGE") else { continue }
            #expect(line.count <= 79, "too long: \(line)")
            guard i + 1 < lines.count, !line.isEmpty, !line.hasPrefix(" ") else { continue }
            let next = lines[i + 1]
            guard let word = next.split(separator: " ").first, !next.hasPrefix(" "), !next.hasSuffix(":"), !next.hasPrefix("USAGE") else { continue }
            #expect(line.count + 1 + word.count > 79, "broken early: '\(line)' / '\(next)'")
        }
    }

    /// With --log-format json every line on stderr is JSON, the final error and summary too.
    @Test func withJSONLogsEveryLineIsJSON() throws {
        let dir = try tempDir()
        let r = try run(["import", "mbox:\(dir)/nowhere.mbox", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--log-format", "json"])
        #expect(r.status == 66, "stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        #expect(lines.contains { $0.contains("\"level\":\"error\"") && $0.contains("cannot open") }, "stderr: \(r.stderr)")
    }

    /// contrib/man has a page per command that names every option its --help does; regenerate
    /// them with contrib/make-man when an option changes.
    @Test(arguments: ["import", "run", "check", "status"])
    func theManPagesNameEveryOption(_ command: String) throws {
        let help = try run([command, "--help"]).stdout
        let page = try String(contentsOfFile: Self.packageRoot.appendingPathComponent("contrib/man/mailfunnel.\(command).1").path,
                              encoding: .utf8)
        let options = Set(help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
            .filter { $0.hasPrefix("--") && $0.count > 2 }
            .map { "--" + String($0.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" }) })
        #expect(!options.isEmpty)
        for option in options.sorted() where option != "--help" && option != "--version" {
            #expect(page.contains("Fl -\(option.dropFirst(2))"), "contrib/man/mailfunnel.\(command).1 lacks \(option): run contrib/make-man")
        }
    }

    /// An option given twice is refused, not silently the last one.
    @Test func aRepeatedOptionIsRefused() throws {
        let r = try run(["import", "mbox:/nowhere.mbox", "maildir:/nowhere", "--target-password-file", "a",
                         "--target-password-file=b"])
        #expect(r.status == 64, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("--target-password-file is given more than once"), "stderr: \(r.stderr)")
        let accounts = try run(["import", "--config", "/nowhere.toml", "--account", "a", "--account", "b"])
        #expect(!accounts.stderr.contains("more than once"), "stderr: \(accounts.stderr)")
        let bash = try String(contentsOfFile: Self.packageRoot.appendingPathComponent("contrib/completions/mailfunnel.bash").path, encoding: .utf8)
        #expect(bash.contains("'keep'$'\\n''mark-seen'$'\\n''delete'"), "option values are completed")
    }

    /// contrib/completions are generated from the command line itself; regenerate them with
    /// contrib/make-completions when an option changes.
    @Test(arguments: [("bash", "mailfunnel.bash"), ("zsh", "_mailfunnel"), ("fish", "mailfunnel.fish")])
    func completionsMatchTheCommandLine(shell: String, file: String) throws {
        let r = try run(["--generate-completion-script", shell])
        #expect(r.status == 0)
        let committed = try String(contentsOfFile: Self.packageRoot.appendingPathComponent("contrib/completions/\(file)").path, encoding: .utf8)
        #expect(r.stdout == committed, "contrib/completions/\(file) is stale: run contrib/make-completions")
    }

    @Test func printsASummaryLineWhenNotATerminal() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(["import", "mbox:\(sample)", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("41 listed, 41 delivered, 0 skipped, 0 failed"), "stderr: \(r.stderr)")
        #expect(!r.stderr.contains("\r"))  // no progress bar without a terminal
        let quiet = try run(["import", "mbox:\(sample)", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty)
    }

    @Test func maildirToMaildirIsByteForByteAndDeleteEmptiesTheSource() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try run(["import", "mbox:\(sample)", "maildir:\(dir)/A", "--ledger", "\(dir)/l.sqlite", "--quiet"])
        #expect(first.status == 0)
        let original = try contents("\(dir)/A")
        let copy = try run(["import", "maildir:\(dir)/A", "maildir:\(dir)/B", "--ledger", "\(dir)/l.sqlite",
                            "--after-delivery", "delete", "--json"])
        #expect(copy.status == 0, "stderr: \(copy.stderr)")
        #expect(try json(copy.stdout)["delivered"] as? Int == 41)
        #expect(try contents("\(dir)/B") == original)
        #expect(files(in: "\(dir)/A").isEmpty)
    }

    /// An account that stops on an error still says what it delivered (committed before the
    /// error), in the JSON object and the summary line, with the error.
    @Test func aRunThatStopsOnAnErrorReportsWhatItDid() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["import", "mbox:\(sample)", "maildir:\(dir)/A", "--ledger", "\(dir)/seed.sqlite", "--quiet"]).status == 0)
        // A second folder at the source, which cannot be made at the target: a file is in its way.
        for sub in ["cur", "new", "tmp"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/A/.Later/\(sub)", withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: files(in: "\(dir)/A")[0], toPath: "\(dir)/A/.Later/new/1.later")
        try FileManager.default.createDirectory(atPath: "\(dir)/B", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(dir)/B/.Later", contents: Data("in the way".utf8))
        let r = try run(["import", "maildir:\(dir)/A", "maildir:\(dir)/B", "--ledger", "\(dir)/l.sqlite", "--json"])
        #expect(r.status != 0)
        let out = try json(r.stdout)
        #expect(out["delivered"] as? Int == 41, "stdout: \(r.stdout)")
        #expect(out["listed"] as? Int == 42)
        let errors = try #require(out["errors"] as? [String])
        #expect(errors.count == 1 && errors[0].contains("Later"), "errors: \(errors)")
        #expect(r.stderr.contains("mailfunnel: error:") && r.stderr.contains("Later"), "stderr: \(r.stderr)")
        // Without --json, the summary line says the same.
        try FileManager.default.createDirectory(atPath: "\(dir)/C", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(dir)/C/.Later", contents: Data("in the way".utf8))
        let line = try run(["import", "maildir:\(dir)/A", "maildir:\(dir)/C", "--ledger", "\(dir)/l2.sqlite"])
        #expect(line.status == r.status)
        #expect(line.stderr.contains("42 listed, 41 delivered, 0 skipped, 0 failed"), "stderr: \(line.stderr)")
        #expect(line.stderr.contains("stopped by the error above"), "stderr: \(line.stderr)")
        // The error was the file in the way: once it is gone, the rerun delivers the rest, and only it.
        try FileManager.default.removeItem(atPath: "\(dir)/C/.Later")
        let again = try run(["import", "maildir:\(dir)/A", "maildir:\(dir)/C", "--ledger", "\(dir)/l2.sqlite", "--json"])
        #expect(again.status == 0, "stderr: \(again.stderr)")
        #expect(try json(again.stdout)["delivered"] as? Int == 1)
        #expect(try json(again.stdout)["errors"] == nil)
    }

    @Test func dryRunWritesNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(["import", "mbox:\(sample)", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--dry-run"])
        #expect(r.status == 0)
        #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("would deliver") }.count == 41)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/M"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/l.sqlite"))
    }

    @Test(arguments: [
        (["import", "imap.example.org", "maildir:/tmp/x"], "no scheme"),
        (["import", "ftp://x", "maildir:/tmp/x"], "unknown scheme 'ftp'"),
        (["import", "imaps://u:pw@host", "maildir:/tmp/x"], "a password does not belong in a URL"),
        (["import", "mbox:/tmp/x.mbox"], "give a source and a target URL"),
        (["import", "mbox:/tmp/x", "maildir:/tmp/y", "--after-delivery", "shred"], "keep, mark-seen or delete"),
        (["import", "maildir:/tmp/y", "mbox:/tmp/x"], "mbox is a source only"),
        (["frobnicate"], "Unexpected argument"),
        (["import", "maildir:/tmp/same", "maildir:/tmp/same/"], "is the source"),
        (["import", "imaps://jean@mail.example.org", "imaps://Jean@mail.example.org/Archive"], "same account as the source"),
        (["import", "imaps://jean@imap.example.net", "maildir:/tmp/y", "--source-auth-mechanisms", "PLAIN,GSSAPI"],
         "--source-auth-mechanisms: 'GSSAPI' is not a login mechanism MailFunnel knows"),
        (["import", "mbox:/tmp/x", "imaps://me@mail.example.org", "--target-auth-mechanisms", ","], "--target-auth-mechanisms needs at least one"),
    ])
    func usageErrorsExit64(arguments: [String], says: String) throws {
        let r = try run(arguments)
        #expect(r.status == 64, "stderr: \(r.stderr)")
        #expect(r.stderr.contains(says), "stderr: \(r.stderr)")
        #expect(!r.stderr.contains("pw@"))
    }

    @Test func anMboxCannotDeleteAfterDelivery() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(["import", "mbox:\(sample)", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite", "--after-delivery", "delete"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("cannot delete messages after delivery"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/M"))
    }

    @Test func aMissingSourceExits66AndANonMboxExits65() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try run(["import", "mbox:\(dir)/nope.mbox", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite"])
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("nope.mbox: cannot open: No such file or directory"))
        FileManager.default.createFile(atPath: "\(dir)/notes.txt", contents: Data("Dear diary\n".utf8))
        let bad = try run(["import", "mbox:\(dir)/notes.txt", "maildir:\(dir)/M", "--ledger", "\(dir)/l.sqlite"])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("not an mbox file"))
    }

    @Test func aBadConfigExits78NamingFileLineAndKey() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/mf.toml"
        try "[targets.home]\nurl = \"maildir:\(dir)/M\"\n\n[[accounts]]\nname = \"old\"\nsource = \"mbox:\(sample)\"\ntarget = \"home\"\nafter_delivry = \"keep\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try run(["import", "--config", path])
        #expect(r.status == 78)
        #expect(r.stderr.contains("\(path):8: key 'accounts[0].after_delivry': unknown key; did you mean 'after_delivery'?"), "stderr: \(r.stderr)")
        let missing = try run(["import", "--config", "\(dir)/none.toml"])
        #expect(missing.status == 78)
        #expect(missing.stderr.contains("none.toml: cannot read the file"))
    }

    @Test func importsConfiguredAccountsByName() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/mf.toml"
        try """
            ledger = "\(dir)/ledger.sqlite"
            [targets.home]
            url = "maildir:\(dir)/Home"
            [[accounts]]
            name = "sample"
            source = "mbox:\(sample)"
            target = "home"
            folder = "Archive"
            [[accounts]]
            name = "other"
            source = "mbox:\(dir)/missing.mbox"
            target = "home"
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try run(["import", "--config", path, "--account", "sample", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(try json(r.stdout)["delivered"] as? Int == 41)
        #expect(files(in: "\(dir)/Home/.Archive").count == 41)
        // Every account: the missing one fails (66) and the good one has nothing new.
        let all = try run(["import", "--config", path, "--json"])
        #expect(all.status == 66)
        #expect(all.stderr.contains("missing.mbox"))
        #expect(try json(all.stdout)["delivered"] as? Int == 0)
        let unknown = try run(["import", "--config", path, "--account", "nobody"])
        #expect(unknown.status == 78)
        #expect(unknown.stderr.contains("no account named nobody"))
        // The ad hoc URL and the configured account share the ledger: nothing twice.
        let adhoc = try run(["import", "mbox:\(sample)", "maildir:\(dir)/Home", "--into", "Archive", "--ledger", "\(dir)/ledger.sqlite", "--json"])
        #expect(try json(adhoc.stdout)["delivered"] as? Int == 0)
    }
}
