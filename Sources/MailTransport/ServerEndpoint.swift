/// How a connection is protected.
public enum TLSMode: String, Sendable, Equatable {
    /// TLS from the first byte (imaps, pop3s, smtps).
    case implicit
    /// Plain first, then STARTTLS/STLS, which is required: no offer, no connection.
    case startTLS = "starttls"
    /// Plain text throughout; only when asked for explicitly.
    case none
}

/// A server to connect to, and how.
public struct ServerEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var tls: TLSMode
    /// PEM certificates trusted in addition to the system store (`--ca-file`).
    public var caFile: String?
    public var connectTimeout: Duration
    /// How long a read may wait for the server before the connection is given up.
    public var readTimeout: Duration
    /// The ways to log in and their order (`auth_mechanisms`); nil for every way both sides have,
    /// strongest first (see `LoginStateMachine`).
    public var loginMethods: [LoginMethod]?

    public init(host: String, port: Int, tls: TLSMode, caFile: String? = nil,
                connectTimeout: Duration = .seconds(15), readTimeout: Duration = .seconds(120),
                loginMethods: [LoginMethod]? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.loginMethods = loginMethods
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is an IP address literal (then the certificate must carry it as an IP SAN).
    var isIPAddress: Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }
}
