import Foundation
import SASL

/// One way of logging in: a SASL mechanism, or a protocol's own command.
public enum LoginMethod: Hashable, Sendable, CustomStringConvertible {
    case sasl(SASLMechanism)
    /// IMAP LOGIN, POP3 USER and PASS: the user name and the password as they are.
    case command
    /// POP3 APOP: a digest of the greeting's timestamp and the password.
    /// - SeeAlso: RFC 1939 §7
    case apop

    /// What the server is handed, so that a refusal of one method can say something of another.
    enum SecretForm: Hashable, Sendable {
        /// The password or token itself (PLAIN, LOGIN, the LOGIN command, USER/PASS, XOAUTH2,
        /// OAUTHBEARER): the server checks that very secret, whichever of these carried it.
        case asIs
        /// A proof the server checks against a stored secret of its own kind, which an account
        /// may lack (SCRAM needs its salted keys, CRAM-MD5 and APOP the password in clear).
        case proof(String)
    }

    var secretForm: SecretForm {
        switch self {
        case .sasl(.scramSHA256): return .proof("SCRAM-SHA-256")
        case .sasl(.cramMD5): return .proof("CRAM-MD5")
        case .apop: return .proof("APOP")
        case .sasl(.plain), .sasl(.login), .sasl(.oauthBearer), .sasl(.xoauth2), .command: return .asIs
        }
    }

    /// Whether the secret crosses the connection as it is, so that only TLS protects it.
    public var exposesSecret: Bool { secretForm == .asIs }

    /// Whether the method can carry `kind` of credentials.
    func carries(_ kind: Credentials.Kind) -> Bool {
        switch self {
        case let .sasl(m): return SASLMechanism.preference(for: kind).contains(m)
        case .command, .apop: return kind == .password
        }
    }

    public var description: String {
        switch self {
        case let .sasl(m): return m.rawValue
        case .command: return "the protocol's LOGIN or USER/PASS command"
        case .apop: return "APOP"
        }
    }

    /// The names `auth_mechanisms` and `--source-auth-mechanisms` take.
    public static let names = SASLMechanism.allCases.map(\.rawValue) + ["APOP"]

    /// The methods a name in `auth_mechanisms` stands for (any case), or nil for an unknown name.
    /// `LOGIN` is AUTH LOGIN and, where the server does not take that, the protocol's own
    /// user-and-password command (IMAP LOGIN, POP3 USER/PASS): both hand over the password as it
    /// is, as mbsync's `AuthMechs LOGIN` does.
    public static func named(_ name: String) -> [LoginMethod]? {
        let upper = name.uppercased()
        if upper == "LOGIN" { return [.sasl(.login), .command] }
        if upper == "APOP" { return [.apop] }
        return SASLMechanism(rawValue: upper).map { [.sasl($0)] }
    }

    /// The methods a list of names stands for, in its order, each once, or the first unknown name.
    public static func parse(_ names: [String]) -> Result<[LoginMethod], UnknownName> {
        var out: [LoginMethod] = []
        for name in names {
            guard let methods = named(name.trimmingCharacters(in: .whitespaces)) else { return .failure(UnknownName(name: name)) }
            for m in methods where !out.contains(m) { out.append(m) }
        }
        return .success(out)
    }

    /// A name `named(_:)` does not know.
    public struct UnknownName: Error, Equatable, CustomStringConvertible {
        public let name: String
        public var description: String {
            "'\(name)' is not a login mechanism MailFunnel knows (known: \(LoginMethod.names.joined(separator: ", ")))"
        }
    }
}
