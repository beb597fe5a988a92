import SMTPCore

/// An SMTP failure: the reply that refused, and the command it answered.
public enum SMTPError: Error, Equatable, CustomStringConvertible {
    case rejected(server: String, command: String, reply: SMTPReply)
    case authenticationFailed(server: String, user: String, reply: SMTPReply?)
    case startTLSNotOffered(server: String)
    case protocolViolation(server: String, detail: String)

    public var description: String {
        switch self {
        case let .rejected(s, c, r): return "\(s): \(c) refused: \(r)"
        case let .authenticationFailed(s, u, r): return "\(s): login as \(u) refused\(r.map { ": \($0)" } ?? "")"
        case let .startTLSNotOffered(s):
            return "\(s) does not offer STARTTLS; refusing to send a password or mail in plain text (use smtps://, or --tls none if you really mean it)"
        case let .protocolViolation(s, d): return "\(s): protocol error: \(d)"
        }
    }

    public var reply: SMTPReply? {
        switch self {
        case let .rejected(_, _, r): return r
        case let .authenticationFailed(_, _, r): return r
        default: return nil
        }
    }
}
