import FunnelModel
import Foundation
import MailTransport

/// How to reach a network source or target: its secret, extra trust, TLS choice.
public struct EndpointSettings: Sendable {
    public var secret = Secret()
    public var caFile: String?
    /// "starttls" (default for the plain schemes) or "none".
    public var tls: String?
    /// The environment variable that holds the password when nothing else gives it.
    public var passwordVariable: String
    /// SMTP targets: the envelope recipient (`--envelope-to`, `envelope_to`).
    public var envelopeTo: String?
    /// The ways to log in, in the order to try them (`auth_mechanisms`,
    /// `--source-auth-mechanisms`); nil for every way both sides have, strongest first.
    public var loginMethods: [LoginMethod]?
    /// How long the server may stay silent before the connection is given up (`timeout`,
    /// `--timeout`); nil for `ServerEndpoint`'s default.
    public var timeout: Duration?

    public init(passwordVariable: String) {
        self.passwordVariable = passwordVariable
    }

    package func endpoint(for url: MailURL, who: String) throws -> ServerEndpoint {
        let mode: TLSMode
        switch url.scheme {
        case .imaps, .pop3s, .smtps: mode = .implicit
        default: mode = tls == "none" ? .none : .startTLS
        }
        var endpoint = ServerEndpoint(host: url.host, port: url.port, tls: mode,
                                      caFile: caFile.map { ($0 as NSString).expandingTildeInPath }, loginMethods: loginMethods)
        if let timeout { endpoint.readTimeout = timeout }
        return endpoint
    }

    /// The password is read now, so that a missing file or a failing command is reported before
    /// anything is fetched, and given at every login.
    package func login(for url: MailURL, who: String) throws -> any CredentialProvider {
        guard let user = url.user else { throw FunnelError.badURL(url.description, reason: "no user name") }
        return FixedCredentials(Credentials(user: user, password: try secret.resolve(environment: passwordVariable, who: who)))
    }
}
