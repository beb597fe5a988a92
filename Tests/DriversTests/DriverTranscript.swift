import Crypto
import Foundation
import FunnelModel
import FunnelTestSupport
import Logging
import MailTransport
import Testing

/// A driver's whole conversation with a scripted server (`TranscriptServer`) on 127.0.0.1: the
/// server plays `lines`, `run` builds the driver on the endpoint it is given and drives it to its
/// close, and then every line the driver sent is checked against the transcript, so a change in
/// what a driver sends fails its test as surely as a change in what it returns.
enum DriverTranscript {
    typealias Line = TranscriptServer.Line

    static let logger = Logger(label: "test")
    static let jean = FixedCredentials(Credentials(user: "jean", password: "s3cret"))

    /// Plays `lines`; `run` gets the endpoint and its description (as errors name the server).
    /// Reads wait at most 5 s, so a driver that waits for a line the transcript does not have
    /// fails with a timeout rather than hanging.
    static func play(_ lines: [Line], _ run: (ServerEndpoint, String) async throws -> Void) async throws {
        let server = try await TranscriptServer.start(lines)
        defer { server.stop() }
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: server.port, tls: .none, connectTimeout: .seconds(5),
                                      readTimeout: .seconds(5))
        var failure: Error?
        do {
            try await run(endpoint, server.endpointDescription)
        } catch {
            failure = error
        }
        // Seen even when `run` failed: where the driver strayed is usually why.
        let deviations = try await server.deviations(within: .seconds(10))
        #expect(deviations == [])
        if let failure { throw failure }
    }

    /// A fresh spool in memory, as the engine makes them (CRLF kept as the server sent it).
    static func makeSpool() -> Spool {
        Spool(options: Spool.Options(directory: NSTemporaryDirectory()))
    }

    /// The SHA-256 of `text` in lower-case hex, as `SpooledMessage.sha256` gives it.
    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The spooled message's bytes as text (small test messages only).
    static func text(_ message: SpooledMessage) throws -> String {
        String(decoding: try message.collect(), as: UTF8.self)
    }

    /// Each result's spool, or nil where the message failed.
    static func spooled(_ results: [FetchResult]) -> [SpooledMessage?] {
        results.map { r in
            if case let .spooled(_, s) = r { return s }
            return nil
        }
    }

    /// Each result's failure, or nil where the message was spooled.
    static func failures(_ results: [FetchResult]) -> [DeliveryError?] {
        results.map { r in
            if case let .failed(_, e) = r { return e }
            return nil
        }
    }

    /// The name `SMTPSink` says EHLO with: this machine's host name.
    static var heloName: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return host.isEmpty ? "localhost" : host
    }
}
