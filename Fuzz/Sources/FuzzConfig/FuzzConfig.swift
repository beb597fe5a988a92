import Funnel
import FunnelModel
import FuzzSupport

/// The config loader on any text: never a trap; the same answer twice; an error is a config
/// error that names the file and, when it gives a line, one the text has; a config it accepts
/// keeps the rules the loader promises (unique account names, known targets, positive limits).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.unicodeScalars.filter { $0 == "\n" }.count + 1
    func outcome() -> Result<Config, Error> { Result { try Config.parse(text, file: "fuzz.toml") } }
    let first = outcome(), second = outcome()
    switch (first, second) {
    case let (.success(a), .success(b)):
        if a.accounts.map(\.name) != b.accounts.map(\.name) || a.targets.keys.sorted() != b.targets.keys.sorted() {
            violated("config: two parses of one text disagree")
        }
        if Set(a.accounts.map(\.name)).count != a.accounts.count { violated("config: two accounts share a name") }
        for account in a.accounts where a.targets[account.target] == nil {
            violated("config: account \(account.name) names an undefined target")
        }
        if a.daemon.maxConcurrentAccounts < 1 { violated("config: max_concurrent_accounts below 1") }
        for t in a.accounts.compactMap(\.timeout) + a.targets.values.compactMap(\.timeout) where t < .seconds(1) {
            violated("config: a timeout under a second")
        }
    case let (.failure(a), .failure(b)):
        if "\(a)" != "\(b)" { violated("config: two parses give different errors: \(a) / \(b)") }
        guard case let .config(file, line, _, _)? = a as? FunnelError else {
            violated("config: an error that is no config error: \(a)")
        }
        if file != "fuzz.toml" { violated("config: an error naming \(file)") }
        if let line, line < 1 || line > lines + 1 { violated("config: an error at line \(line) of \(lines)") }
    default:
        violated("config: one text both accepted and refused")
    }
    return 0
}
