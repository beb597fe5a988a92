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
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: server.port, tls: tls, readTimeout: .seconds(10))
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

    static func same(_ expected: any Error & Equatable, _ actual: any Error) -> Bool {
        func matches<E: Error & Equatable>(_ e: E) -> Bool { (actual as? E) == e }
        return matches(expected)
    }
}
