import Logging

/// Logs a protocol conversation at `trace` level (`-vv`): `C: a1 SELECT INBOX` / `S: * 3 EXISTS`.
/// Lines that carry secrets are redacted before they reach the log; message bodies are summarised.
public struct ProtocolTrace: Sendable {
    public var logger: Logger
    public let server: String

    public init(logger: Logger, server: String) {
        self.logger = logger
        self.server = server
    }

    public var isEnabled: Bool { logger.logLevel <= .trace }

    public func client(_ line: @autoclosure () -> String) {
        guard isEnabled else { return }
        logger.trace("C: \(line())", metadata: ["server": "\(server)"])
    }

    public func server(_ line: @autoclosure () -> String) {
        guard isEnabled else { return }
        logger.trace("S: \(line())", metadata: ["server": "\(server)"])
    }

    /// `a1 LOGIN "jean" "secret"` → `a1 LOGIN "jean" <redacted>`; `a2 AUTHENTICATE PLAIN AGplYW4…` →
    /// `a2 AUTHENTICATE PLAIN <redacted>`.
    public static func redact(_ line: String) -> String {
        let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard words.count >= 2 else { return line }
        let verb = words[1].uppercased()
        if verb == "LOGIN", words.count >= 3 {
            return "\(words[0]) LOGIN \(words[2]) <redacted>"
        }
        if verb == "AUTHENTICATE", words.count >= 3 {
            return words.count > 3 ? "\(words[0]) AUTHENTICATE \(words[2]) <redacted>" : line
        }
        if words[0].uppercased() == "PASS" || words[0].uppercased() == "AUTH" && words.count > 2 {
            return "\(words[0]) <redacted>"
        }
        return line
    }
}
