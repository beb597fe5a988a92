import LedgerSQLite
import TransferEngine
import Drivers
import FunnelModel
import Foundation
import MailTransport
import TOMLKit
#if canImport(Glibc)
import Glibc
#endif

/// The TOML config file (`etc/mailfunnel.toml` documents it): the ledger, daemon settings, named
/// targets and accounts.
///
/// Every error names the file, the line, the key and what was expected. Unknown keys are errors (a
/// misspelt `after_delivery` must not silently keep mail forever). A file that holds a password and
/// can be read by group or others is refused.
public struct Config: Sendable {
    public var file: String
    public var ledger: String?
    public var daemon = Daemon()
    public var targets: [String: Target] = [:]
    public var accounts: [Account] = []

    public struct Daemon: Sendable {
        public var pollInterval: Duration = .seconds(300)
        public var maxConcurrentAccounts = 8
        public var metricsListen: String?
    }

    /// Where to find a secret (see `Drivers.Secret`).
    public typealias Secret = Drivers.Secret

    public struct Target: Sendable {
        public var name: String
        public var url: MailURL
        public var secret = Secret()
        public var caFile: String?
        public var tls: String?
        public var envelopeTo: String?
        public var folder: String?
        /// `auth_mechanisms`: the ways to log in, in order; nil for all.
        public var loginMethods: [LoginMethod]?
        /// `timeout`: how long the server may stay silent; nil for the default.
        public var timeout: Duration?
        public var line: Int?
    }

    public struct Account: Sendable {
        public var name: String
        public var source: MailURL
        public var secret = Secret()
        public var target: String
        public var folder: String?
        public var folders: [String]?
        public var afterDelivery: Disposal = .keep
        public var deleteAfter: Duration?
        public var pollInterval: Duration?
        public var idle = false
        public var caFile: String?
        public var tls: String?
        /// `auth_mechanisms`: the ways to log in to the source, in order; nil for all.
        public var loginMethods: [LoginMethod]?
        /// `timeout`: how long the source may stay silent; nil for the default.
        public var timeout: Duration?
        public var line: Int?
    }

    static let topKeys = ["ledger", "daemon", "targets", "accounts"]
    static let daemonKeys = ["poll_interval", "max_concurrent_accounts", "metrics_listen"]
    static let targetKeys = ["url", "password_file", "password_command", "password", "ca_file", "tls", "envelope_to", "folder",
                             "auth_mechanisms", "timeout"]
    static let accountKeys = ["name", "source", "password_file", "password_command", "password", "target", "folder",
                              "folders", "after_delivery", "delete_after", "poll_interval", "idle", "ca_file", "tls",
                              "auth_mechanisms", "timeout"]

    /// Reads and checks a config file.
    public static func load(path: String) throws -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FunnelError.config(file: path, line: nil, key: nil, message: "cannot read the file: \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FunnelError.config(file: path, line: nil, key: nil, message: "not UTF-8 text")
        }
        var config = try parse(text, file: path)
        if config.holdsInlinePassword {
            var st = stat()
            if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
                throw FunnelError.config(file: path, line: nil, key: "password",
                                         message: "holds a password but can be read by others; run: chmod 600 \(path)")
            }
        }
        config.file = path
        return config
    }

    var holdsInlinePassword: Bool {
        targets.values.contains { $0.secret.inline != nil } || accounts.contains { $0.secret.inline != nil }
    }

    /// Parses config text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws -> Config {
        let locator = TOMLLocator(text)
        if let line = TOMLPrecheck.malformedHeaderLine(text) {
            throw FunnelError.config(file: file, line: line, key: nil,
                                     message: "not valid TOML: a table header is a name in brackets, such as [targets.home] or [[accounts]]")
        }
        switch TOMLPrecheck.valueProblem(text) {
        case let (line, .braceInArray)?:
            throw FunnelError.config(file: file, line: line, key: nil,
                                     message: "not valid TOML: an array is values in brackets, such as [\"PLAIN\", \"LOGIN\"]; a '}' cannot close one")
        case let (line, .date)?:
            throw FunnelError.config(file: file, line: line, key: nil,
                                     message: "a date, and no setting takes one; durations and names are quoted text, such as \"30d\"")
        case let (line, .outsideQuotes)?:
            throw FunnelError.config(file: file, line: line, key: nil,
                                     message: "not valid TOML: a character TOML allows only inside quotes or in a comment (a name or value that is not plain ASCII is written in quotes)")
        case nil: break
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw FunnelError.config(file: file, line: error.source.begin.line, key: nil,
                                     message: "not valid TOML: \(error.description)")
        }
        let r = Reader(file: file, locator: locator)
        var config = Config(file: file)
        try r.checkKeys(root, allowed: topKeys, section: [])
        config.ledger = try r.string(root, "ledger", section: [])

        if let value = root["daemon"] {
            guard let daemon = value.table else { throw r.error([], "daemon", "expected a table [daemon]") }
            try r.checkKeys(daemon, allowed: daemonKeys, section: ["daemon"])
            if let d = try r.duration(daemon, "poll_interval", section: ["daemon"]) { config.daemon.pollInterval = d }
            if let n = try r.int(daemon, "max_concurrent_accounts", section: ["daemon"]) {
                guard n >= 1 else { throw r.error(["daemon"], "max_concurrent_accounts", "expected a number of at least 1") }
                config.daemon.maxConcurrentAccounts = n
            }
            config.daemon.metricsListen = try r.string(daemon, "metrics_listen", section: ["daemon"])
        }

        if let value = root["targets"] {
            guard let targets = value.table else { throw r.error([], "targets", "expected tables [targets.NAME]") }
            for name in targets.keys.sorted() {
                let section = ["targets", name]
                guard let t = targets[name]?.table else { throw r.error(["targets"], name, "expected a table [targets.\(name)]") }
                try r.checkKeys(t, allowed: targetKeys, section: section)
                guard let urlText = try r.string(t, "url", section: section) else {
                    throw r.error(section, "url", "missing; every target needs a url such as \"imaps://me@mail.example.org/INBOX\"", line: locator.line(section: section, key: nil))
                }
                var target = Target(name: name, url: try r.url(urlText, section: section, key: "url"))
                target.secret = try r.secret(t, section: section)
                target.caFile = try r.string(t, "ca_file", section: section)
                target.tls = try r.tls(t, section: section)
                target.envelopeTo = try r.string(t, "envelope_to", section: section)
                target.folder = try r.string(t, "folder", section: section)
                target.loginMethods = try r.loginMethods(t, section: section)
                target.timeout = try r.timeout(t, section: section)
                target.line = locator.line(section: section, key: nil)
                config.targets[name] = target
            }
        }

        if let value = root["accounts"] {
            guard let accounts = value.array else { throw r.error([], "accounts", "expected [[accounts]] tables") }
            var seen: Set<String> = []
            for index in 0..<accounts.count {
                let section = ["accounts#\(index)"]
                guard let a = accounts[index].table else { throw r.error([], "accounts", "expected [[accounts]] tables") }
                try r.checkKeys(a, allowed: accountKeys, section: section)
                guard let name = try r.string(a, "name", section: section), !name.isEmpty else {
                    throw r.error(section, "name", "missing; every [[accounts]] needs a name", line: locator.line(section: section, key: nil))
                }
                guard seen.insert(name).inserted else { throw r.error(section, "name", "a second account named '\(name)'; names must be unique") }
                guard let sourceText = try r.string(a, "source", section: section) else {
                    throw r.error(section, "source", "missing; account '\(name)' needs a source URL such as \"pop3s://user@pop.example.org\"", line: locator.line(section: section, key: nil))
                }
                guard let targetName = try r.string(a, "target", section: section) else {
                    throw r.error(section, "target", "missing; account '\(name)' needs a target, one of: \(config.targets.keys.sorted().joined(separator: ", "))", line: locator.line(section: section, key: nil))
                }
                guard config.targets[targetName] != nil else {
                    let known = config.targets.keys.sorted()
                    throw r.error(section, "target", "no [targets.\(targetName)] is defined" + (known.isEmpty ? "" : "; defined: \(known.joined(separator: ", "))"))
                }
                var account = Account(name: name, source: try r.url(sourceText, section: section, key: "source"), target: targetName)
                account.secret = try r.secret(a, section: section)
                account.folder = try r.string(a, "folder", section: section)
                account.folders = try r.stringArray(a, "folders", section: section)
                if let d = try r.string(a, "after_delivery", section: section) {
                    guard let disposal = Disposal(rawValue: d) else {
                        throw r.error(section, "after_delivery", "'\(d)' is not one of keep, mark-seen, delete")
                    }
                    account.afterDelivery = disposal
                }
                account.deleteAfter = try r.duration(a, "delete_after", section: section)
                if account.deleteAfter != nil && account.afterDelivery != .delete {
                    throw r.error(section, "delete_after", "only means something with after_delivery = \"delete\"")
                }
                account.pollInterval = try r.duration(a, "poll_interval", section: section)
                account.idle = try r.bool(a, "idle", section: section) ?? false
                account.caFile = try r.string(a, "ca_file", section: section)
                account.tls = try r.tls(a, section: section)
                account.loginMethods = try r.loginMethods(a, section: section)
                account.timeout = try r.timeout(a, section: section)
                account.line = locator.line(section: section, key: nil)
                // Two accounts on one source would share its ledger records and race each other.
                if let twin = config.accounts.first(where: { $0.source.description == account.source.description && $0.folders == account.folders }) {
                    throw r.error(section, "source", "account '\(twin.name)' already reads \(account.source); give each account its own source (or its own folders)")
                }
                config.accounts.append(account)
            }
        }
        return config
    }

    /// Reads typed values and turns every problem into an error with file, line and key.
    struct Reader {
        let file: String
        let locator: TOMLLocator

        func error(_ section: [String], _ key: String, _ message: String, line: Int? = nil) -> FunnelError {
            let dotted = (section.map { $0.hasPrefix("accounts#") ? "accounts[\($0.dropFirst(9))]" : $0 } + [key])
                .joined(separator: ".")
            return .config(file: file, line: line ?? locator.line(section: section, key: key), key: dotted, message: message)
        }

        func checkKeys(_ table: TOMLTable, allowed: [String], section: [String]) throws {
            for key in table.keys where !allowed.contains(key) {
                let hint = allowed.min { editDistance($0, key) < editDistance($1, key) }
                    .flatMap { editDistance($0, key) <= 3 ? "; did you mean '\($0)'?" : nil } ?? ""
                throw error(section, key, "unknown key\(hint) (known here: \(allowed.joined(separator: ", ")))")
            }
        }

        func string(_ t: TOMLTable, _ key: String, section: [String]) throws -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.string else { throw error(section, key, "expected a string in quotes, found \(v.type)") }
            return s
        }

        func int(_ t: TOMLTable, _ key: String, section: [String]) throws -> Int? {
            guard let v = t[key] else { return nil }
            guard let n = v.int else { throw error(section, key, "expected a whole number, found \(v.type)") }
            return n
        }

        func bool(_ t: TOMLTable, _ key: String, section: [String]) throws -> Bool? {
            guard let v = t[key] else { return nil }
            guard let b = v.bool else { throw error(section, key, "expected true or false, found \(v.type)") }
            return b
        }

        func stringArray(_ t: TOMLTable, _ key: String, section: [String]) throws -> [String]? {
            guard let v = t[key] else { return nil }
            guard let a = v.array else { throw error(section, key, "expected a list of strings such as [\"INBOX\", \"Sent\"], found \(v.type)") }
            return try a.map { item in
                guard let s = item.string else { throw error(section, key, "expected a list of strings, found a \(item.type) in it") }
                return s
            }
        }

        func duration(_ t: TOMLTable, _ key: String, section: [String]) throws -> Duration? {
            guard let text = try string(t, key, section: section) else { return nil }
            guard let d = parseDuration(text) else {
                throw error(section, key, "'\(text)' is not a duration; expected a number and a unit, such as \"90s\", \"5m\", \"2h\" or \"30d\"")
            }
            return d
        }

        /// `timeout = "60s"`: a duration of at least a second.
        func timeout(_ t: TOMLTable, section: [String]) throws -> Duration? {
            guard let d = try duration(t, "timeout", section: section) else { return nil }
            guard d >= .seconds(1) else { throw error(section, "timeout", "must be at least 1s") }
            return d
        }

        func url(_ text: String, section: [String], key: String) throws -> MailURL {
            do {
                return try MailURL.parse(text)
            } catch let e as FunnelError {
                if case let .badURL(_, reason) = e { throw error(section, key, "bad URL: \(reason)") }
                throw e
            }
        }

        func tls(_ t: TOMLTable, section: [String]) throws -> String? {
            guard let v = try string(t, "tls", section: section) else { return nil }
            guard ["starttls", "none"].contains(v) else {
                throw error(section, "tls", "'\(v)' is not one of starttls, none")
            }
            return v
        }

        /// `auth_mechanisms = ["SCRAM-SHA-256", "PLAIN"]`: known names, at least one.
        func loginMethods(_ t: TOMLTable, section: [String]) throws -> [LoginMethod]? {
            if let v = t["auth_mechanisms"], v.array == nil {
                throw error(section, "auth_mechanisms", "expected a list of names such as [\"PLAIN\"], found \(v.type)")
            }
            guard let names = try stringArray(t, "auth_mechanisms", section: section) else { return nil }
            guard !names.isEmpty else {
                throw error(section, "auth_mechanisms", "is empty; name at least one of \(LoginMethod.names.joined(separator: ", ")), or leave the key out for all")
            }
            switch LoginMethod.parse(names) {
            case let .success(methods): return methods
            case let .failure(unknown): throw error(section, "auth_mechanisms", unknown.description)
            }
        }

        func secret(_ t: TOMLTable, section: [String]) throws -> Secret {
            var s = Secret()
            s.file = try string(t, "password_file", section: section)
            s.command = try string(t, "password_command", section: section)
            s.inline = try string(t, "password", section: section)
            let set = [s.file, s.command, s.inline].compactMap { $0 }.count
            if set > 1 {
                throw error(section, "password", "give only one of password_file, password_command and password")
            }
            return s
        }
    }
}

/// "90s", "5m", "2h", "30d" (also "1w"); a plain number is seconds.
public func parseDuration(_ text: String) -> Duration? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    guard let last = trimmed.last else { return nil }
    let unit: Int64
    var number = trimmed
    switch last {
    case "s": unit = 1; number.removeLast()
    case "m": unit = 60; number.removeLast()
    case "h": unit = 3600; number.removeLast()
    case "d": unit = 86400; number.removeLast()
    case "w": unit = 7 * 86400; number.removeLast()
    default: unit = 1
    }
    // A count of days that overflows in seconds is no duration (it trapped the process).
    guard let n = Int64(number), n >= 0, case let (seconds, false) = n.multipliedReportingOverflow(by: unit) else { return nil }
    return .seconds(seconds)
}

/// Levenshtein distance, for "did you mean" on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in 1...b.count {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}

/// Finds the line of a table or key in TOML text. TOMLKit's values carry no positions, so this
/// walks the text: `[a.b]` and `[[accounts]]` headers (counting array entries) and `key =` lines.
struct TOMLLocator {
    private var tableLines: [String: Int] = [:]
    private var keyLines: [String: Int] = [:]

    init(_ text: String) {
        var section = ""
        var arrayCounts: [String: Int] = [:]
        for (number, raw) in TOMLPrecheck.lines(text).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }.trimmingCharacters(in: .whitespaces)
                let index = arrayCounts[name, default: 0]
                arrayCounts[name] = index + 1
                section = "\(name)#\(index)"
                tableLines[section] = number + 1
            } else if line.hasPrefix("[") {
                section = line.dropFirst().prefix { $0 != "]" }.split(separator: ".")
                    .map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
                    .joined(separator: ".")
                tableLines[section] = number + 1
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                let full = section.isEmpty ? key : "\(section).\(key)"
                if keyLines[full] == nil { keyLines[full] = number + 1 }
            }
        }
    }

    /// The line of `key` in `section` (a path such as ["targets", "home"] or ["accounts#0"]), or of
    /// the section's header when the key is nil or absent.
    func line(section: [String], key: String?) -> Int? {
        let s = section.joined(separator: ".")
        if let key {
            let full = s.isEmpty ? key : "\(s).\(key)"
            if let l = keyLines[full] ?? tableLines[full] ?? tableLines["\(full)#0"] { return l }
        }
        return tableLines[s]
    }
}
