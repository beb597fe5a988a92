import IMAPCore

/// An IMAP failure, naming the server, the command, the mailbox and what the server said.
public enum IMAPError: Error, Equatable, CustomStringConvertible {
    /// NO or BAD to a command.
    case commandFailed(server: String, command: String, status: ResponseStatus, code: ResponseCode?, text: String, mailbox: String?)
    /// The server refused the credentials.
    case authenticationFailed(server: String, user: String, text: String)
    /// An `imap://` URL requires STARTTLS and the server does not offer it.
    case startTLSNotOffered(server: String)
    /// No authentication method both sides support.
    case noUsableMechanism(server: String, offered: [String])
    /// The server said BYE (at greeting or during a command).
    case bye(server: String, text: String)
    /// The server's response broke the protocol.
    case protocolViolation(server: String, detail: String)

    public var description: String {
        switch self {
        case let .commandFailed(server, command, status, code, text, mailbox):
            let where_ = mailbox.map { " (mailbox \($0))" } ?? ""
            let c = code.map { " [\(Self.describe($0))]" } ?? ""
            return "\(server): \(command)\(where_) failed: \(status.rawValue)\(c) \(text)"
        case let .authenticationFailed(server, user, text):
            return "\(server): login as \(user) refused: \(text)"
        case let .startTLSNotOffered(server):
            return "\(server) does not offer STARTTLS; refusing to send a password in plain text (use imaps://, or --tls none if you really mean it)"
        case let .noUsableMechanism(server, offered):
            return "\(server): no login method in common (the server offers: \(offered.joined(separator: " ")))"
        case let .bye(server, text):
            return "\(server) closed the session: \(text)"
        case let .protocolViolation(server, detail):
            return "\(server): protocol error: \(detail)"
        }
    }

    /// A response code as the server wrote it, for codes kept by name (`AUTHENTICATIONFAILED`,
    /// `UNAVAILABLE`); the others as their case reads.
    static func describe(_ code: ResponseCode) -> String {
        switch code {
        case let .other(name, text): return name + (text.map { " " + $0 } ?? "")
        case .alert: return "ALERT"
        case .parse: return "PARSE"
        case .readOnly: return "READ-ONLY"
        case .readWrite: return "READ-WRITE"
        case .tryCreate: return "TRYCREATE"
        case .throttled: return "THROTTLED"
        case .overQuota: return "OVERQUOTA"
        case .tooBig: return "TOOBIG"
        case let .uidNext(n): return "UIDNEXT \(n)"
        case let .uidValidity(n): return "UIDVALIDITY \(n)"
        case let .unseen(n): return "UNSEEN \(n)"
        case let .highestModSeq(n): return "HIGHESTMODSEQ \(n)"
        default: return "\(code)"
        }
    }

    /// The server's response code, when it gave one.
    public var code: ResponseCode? {
        if case let .commandFailed(_, _, _, code, _, _) = self { return code }
        return nil
    }
}
