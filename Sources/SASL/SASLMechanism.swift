/// SASL mechanisms, strongest first in `passwordPreference` and `tokenPreference`.
/// - SeeAlso: RFC 4616 (PLAIN), RFC 2195 (CRAM-MD5), RFC 5802 and RFC 7677 (SCRAM-SHA-256),
///   RFC 7628 (OAUTHBEARER), Google's XOAUTH2
public enum SASLMechanism: String, Sendable, CaseIterable {
    case scramSHA256 = "SCRAM-SHA-256"
    case cramMD5 = "CRAM-MD5"
    case plain = "PLAIN"
    case login = "LOGIN"
    case oauthBearer = "OAUTHBEARER"
    case xoauth2 = "XOAUTH2"

    /// For a password: SCRAM, then PLAIN (always under TLS here), then CRAM-MD5, then LOGIN.
    public static let passwordPreference: [SASLMechanism] = [.scramSHA256, .plain, .cramMD5, .login]
    public static let tokenPreference: [SASLMechanism] = [.oauthBearer, .xoauth2]

    /// The mechanisms worth trying for `kind`, strongest first.
    public static func preference(for kind: Credentials.Kind) -> [SASLMechanism] {
        kind == .oauthToken ? tokenPreference : passwordPreference
    }

    /// The strongest mechanism for `kind` among the names a server offers (in any case), or nil
    /// when there is none in common.
    public static func strongest(among offered: [String], for kind: Credentials.Kind) -> SASLMechanism? {
        let names = Set(offered.map { $0.uppercased() })
        return preference(for: kind).first { names.contains($0.rawValue) }
    }
}
