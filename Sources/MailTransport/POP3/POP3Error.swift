import POP3Core

/// A POP3 failure, naming the server and the command, with the RFC 3206 code when given.
public enum POP3Error: Error, Equatable, CustomStringConvertible {
    case commandFailed(server: String, command: String, code: String?, text: String)
    case authenticationFailed(server: String, user: String, code: String?, text: String)
    case startTLSNotOffered(server: String)
    /// QUIT was not answered +OK: the server deleted nothing.
    case quitFailed(server: String, detail: String)
    case protocolViolation(server: String, detail: String)

    public var description: String {
        switch self {
        case let .commandFailed(s, c, code, t): return "\(s): \(c) failed: -ERR\(code.map { " [\($0)]" } ?? "") \(t)"
        case let .authenticationFailed(s, u, code, t): return "\(s): login as \(u) refused:\(code.map { " [\($0)]" } ?? "") \(t)"
        case let .startTLSNotOffered(s):
            return "\(s) does not offer STLS; refusing to send a password in plain text (use pop3s://, or --tls none if you really mean it)"
        case let .quitFailed(s, d): return "\(s): QUIT failed (\(d)); the server deleted nothing"
        case let .protocolViolation(s, d): return "\(s): protocol error: \(d)"
        }
    }

    /// The RFC 3206 code, classified, when the server gave one.
    public var responseCode: POP3ResponseCode? {
        switch self {
        case let .commandFailed(_, _, code, _), let .authenticationFailed(_, _, code, _): return code.map(POP3ResponseCode.init)
        default: return nil
        }
    }
}
