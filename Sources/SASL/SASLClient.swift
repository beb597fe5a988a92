import Crypto
import Foundation

/// What one mechanism says, sans I/O: the client sends `initialResponse` (when the protocol lets it
/// ride in the command) or waits for the first challenge, then answers each challenge with
/// `respond(to:)`. `SASLStateMachine` drives it through a whole exchange.
public struct SASLClient: Sendable {
    public let mechanism: SASLMechanism
    let credentials: Credentials
    var step = 0
    let clientNonce: String
    var scram: (authMessage: String, serverSignature: [UInt8])?
    var clientFirstBare = ""

    public init(mechanism: SASLMechanism, credentials: Credentials, nonce: String? = nil) {
        self.mechanism = mechanism
        self.credentials = credentials
        self.clientNonce = nonce ?? Self.makeNonce()
    }

    /// The first client message, for mechanisms that speak first (nil for LOGIN and CRAM-MD5).
    public mutating func initialResponse() -> [UInt8]? {
        switch mechanism {
        case .plain:
            return Array("\0\(credentials.user)\0\(credentials.secret)".utf8)
        case .xoauth2:
            return Array("user=\(credentials.user)\u{1}auth=Bearer \(credentials.secret)\u{1}\u{1}".utf8)
        case .oauthBearer:
            return Array("n,a=\(Self.escapeSaslName(credentials.user)),\u{1}auth=Bearer \(credentials.secret)\u{1}\u{1}".utf8)
        case .scramSHA256:
            step = 1
            clientFirstBare = "n=\(Self.escapeSaslName(credentials.user)),r=\(clientNonce)"
            return Array(("n,," + clientFirstBare).utf8)
        case .login, .cramMD5:
            return nil
        }
    }

    /// The answer to a server challenge (already base64-decoded).
    public mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8] {
        switch mechanism {
        case .login:
            step += 1
            let prompt = String(decoding: challenge, as: UTF8.self).lowercased()
            if prompt.hasPrefix("user") || (step == 1 && !prompt.hasPrefix("pass")) { return Array(credentials.user.utf8) }
            return Array(credentials.secret.utf8)
        case .cramMD5:
            var hmac = HMAC<Insecure.MD5>(key: SymmetricKey(data: Array(credentials.secret.utf8)))
            hmac.update(data: challenge)
            let digest = Array(hmac.finalize()).map { String(format: "%02x", $0) }.joined()
            return Array("\(credentials.user) \(digest)".utf8)
        case .scramSHA256:
            if step == 1 {
                step = 2
                return try scramClientFinal(serverFirst: String(decoding: challenge, as: UTF8.self))
            }
            try verifyServerFinal(challenge)
            step = 3  // the server proved it knows the password
            return []
        case .xoauth2, .oauthBearer:
            // A challenge here carries the server's JSON error; the answer is an empty response,
            // after which the server fails the command with the real status.
            return []
        case .plain:
            if challenge.isEmpty, let first = initialResponse() { return first }
            throw SASLError.unexpectedChallenge(String(decoding: challenge, as: UTF8.self))
        }
    }

    /// Whether the exchange ended as it should (SCRAM must have verified the server).
    public var awaitingServerFinal: Bool { mechanism == .scramSHA256 && step == 2 }

    /// `=` → `=3D`, `,` → `=2C` (RFC 5802 §5.1).
    static func escapeSaslName(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    static func makeNonce() -> String {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<18).map { _ in UInt8.random(in: 0...255, using: &g) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: ",", with: "-")
    }
}
