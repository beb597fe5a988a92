import Foundation
import FunnelTestSupport
import Logging
@testable import MailTransport
import Testing

/// One opening of a session against a `TranscriptServer`: what the server says, what the client
/// must send, and how the opening ends.
struct LoginTranscript: Sendable, CustomTestStringConvertible {
    var name: String
    var tls: TLSMode = .none
    var credentials = LoginTranscript.jean
    /// The endpoint's `loginMethods` (`auth_mechanisms`).
    var loginMethods: [LoginMethod]? = nil
    var lines: [TranscriptServer.Line]
    /// The error the opening fails with, from the server's description; nil when it opens.
    var error: @Sendable (_ server: String) -> (any Error & Equatable)? = { _ in nil }

    var testDescription: String { name }

    static let jean = Credentials(user: "jean", password: "s3cret")
    static let logger = Logger(label: "test")

    /// Plays the transcript: `open` opens a session to the scripted server with `credentials`
    /// (and closes it when it opened); the outcome and every line the client sent are checked.
    func play(_ open: (ServerEndpoint, Credentials) async throws -> Void) async throws {
        let server = try await TranscriptServer.start(lines)
        defer { server.stop() }
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: server.port, tls: tls, readTimeout: .seconds(10),
                                      loginMethods: loginMethods)
        let expected = error(server.endpointDescription)
        do {
            try await open(endpoint, credentials)
            if let expected { Issue.record("the session opened; expected \(expected)") }
        } catch {
            if let expected {
                #expect(Self.same(expected, error), "expected \(expected), got \(error)")
            } else {
                Issue.record("expected the session to open, got \(error)")
            }
        }
        let deviations = try await server.deviations()
        #expect(deviations == [])
    }

    /// `base64("n,,n=jean,r=")`: how jean's SCRAM client-first begins, before its random nonce.
    static let scramClientFirst = "biwsbj1qZWFuLHI9"
    /// `base64("c=biws,r=")`: how a SCRAM client-final begins.
    static let scramClientFinal = "Yz1iaXdzLHI9"

    /// A SCRAM-SHA-256 server-first (RFC 5802 §7) for the client-first that ends `line` (base64,
    /// after the last space), extending the client's nonce; `prefix` is the protocol's (`334 `, `+ `).
    static func scramServerFirst(_ prefix: String) -> @Sendable (String) -> String {
        { line in
            let clientFirst = String(decoding: Data(base64Encoded: String(line.split(separator: " ").last ?? "")) ?? Data(), as: UTF8.self)
            let nonce = clientFirst.components(separatedBy: "r=").last ?? ""
            let serverFirst = "r=\(nonce)SeRvEr,s=\(Data("salt".utf8).base64EncodedString()),i=4096"
            return prefix + Data(serverFirst.utf8).base64EncodedString()
        }
    }

    static func same(_ expected: any Error & Equatable, _ actual: any Error) -> Bool {
        func matches<E: Error & Equatable>(_ e: E) -> Bool { (actual as? E) == e }
        return matches(expected)
    }
}
