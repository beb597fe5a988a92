import Drivers
import Foundation
@testable import Funnel
import Testing

/// The systemd units in contrib/ and the example config work together as written: systemd takes
/// the units without a warning, and every path the example config reads or writes is one the
/// system unit's sandbox lets it use.
struct ServiceUnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: String {
        ProcessInfo.processInfo.environment["MAILFUNNEL_BIN"] ?? root.appendingPathComponent(".build/debug/mailfunnel").path
    }

    /// `systemd-analyze verify` on a copy whose ExecStart names the built binary (verify wants the
    /// program to exist): exit 0 and nothing said, since it reports bad keys and values as
    /// warnings only.
    func verify(_ unit: String, installedAs name: String, user: Bool, replacing program: String) throws -> (Int32, String) {
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let analyze else {
            Issue.record("systemd-analyze is missing: install the systemd package (scripts/test does)")
            return (-1, "")
        }
        let dir = NSTemporaryDirectory() + "/mf-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try String(contentsOfFile: Self.root.appendingPathComponent("contrib/\(unit)").path, encoding: .utf8)
        #expect(text.contains("ExecStart=\(program) "))
        try text.replacingOccurrences(of: "ExecStart=\(program) ", with: "ExecStart=\(Self.binary) ")
            .write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: analyze)
        p.arguments = (user ? ["--user"] : []) + ["verify", "\(dir)/\(name)"]
        // A user manager needs its runtime directory, which a test run may not have.
        var env = ProcessInfo.processInfo.environment
        if user {
            try FileManager.default.createDirectory(atPath: "\(dir)/run", withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            env["XDG_RUNTIME_DIR"] = "\(dir)/run"
        }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    @Test func theSystemUnitVerifies() throws {
        let (status, out) = try verify("mailfunnel.service", installedAs: "mailfunnel.service", user: false,
                                       replacing: "/usr/local/bin/mailfunnel")
        #expect(status == 0 && out.isEmpty, "systemd-analyze: \(out)")
    }

    @Test func theUserUnitVerifies() throws {
        let (status, out) = try verify("mailfunnel-user.service", installedAs: "mailfunnel.service", user: true,
                                       replacing: "%h/.local/bin/mailfunnel")
        #expect(status == 0 && out.isEmpty, "systemd-analyze: \(out)")
    }

    /// What the system unit allows: writing under its state directory, reading anything but homes.
    @Test func theExampleConfigFitsTheSystemUnit() throws {
        let unit = try String(contentsOfFile: Self.root.appendingPathComponent("contrib/mailfunnel.service").path, encoding: .utf8)
        #expect(unit.contains("\nStateDirectory=mailfunnel\n") && unit.contains("\nProtectHome=yes\n")
                && unit.contains("\nProtectSystem=strict\n") && unit.contains("\nDynamicUser=yes\n"))
        #expect(unit.contains("--config /etc/mailfunnel/mailfunnel.toml"))
        #expect(unit.contains("install -m 0644 etc/mailfunnel.toml /etc/mailfunnel/mailfunnel.toml"))
        let state = "/var/lib/mailfunnel/"

        // Installed as the unit's comment says: mode 0644, readable by the dynamic user. It loads
        // only if it holds no password.
        let dir = NSTemporaryDirectory() + "/mf-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = "\(dir)/mailfunnel.toml"
        try FileManager.default.copyItem(atPath: Self.root.appendingPathComponent("etc/mailfunnel.toml").path, toPath: copy)
        chmod(copy, 0o644)
        let c = try Config.load(path: copy)
        #expect(c.ledger?.hasPrefix(state) == true, "ledger \(c.ledger ?? "default")")
        for t in c.targets.values where t.url.scheme == .maildir {
            #expect(t.url.path.hasPrefix(state), "target \(t.name): \(t.url.path) is not writable by the service")
        }
        for a in c.accounts where !a.source.scheme.isNetwork {
            let path = a.source.path
            #expect(!path.hasPrefix("/home/") && !path.hasPrefix("/root/"), "account \(a.name): \(path) is hidden by ProtectHome")
            if a.afterDelivery != .keep {
                #expect(path.hasPrefix(state), "account \(a.name): \(path) is read-only under ProtectSystem=strict")
            }
        }
    }
}
