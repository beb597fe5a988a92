/// Why the client cannot go on with a SASL exchange.
public enum SASLError: Error, Equatable, CustomStringConvertible {
    case unexpectedChallenge(String)
    case serverSignatureMismatch
    case badServerMessage(String)

    public var description: String {
        switch self {
        case let .unexpectedChallenge(m): return "unexpected SASL challenge: \(m)"
        case .serverSignatureMismatch: return "the server's SCRAM signature is wrong: it does not know the password (a man in the middle?)"
        case let .badServerMessage(m): return "malformed SASL server message: \(m)"
        }
    }
}
