/// A user name with its secret. `description` never shows the secret.
public struct Credentials: Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case password, oauthToken }

    public var user: String
    public var secret: String
    public var kind: Kind

    public init(user: String, password: String) {
        self.user = user
        self.secret = password
        self.kind = .password
    }

    public init(user: String, oauthToken: String) {
        self.user = user
        self.secret = oauthToken
        self.kind = .oauthToken
    }

    public var description: String { "\(user) <redacted>" }
}
