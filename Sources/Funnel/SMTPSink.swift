import Foundation
import Logging
import MailMessage
import MailTransport
import NIOCore
import SMTPCore

/// Relays each message over SMTP to one envelope recipient, over one session for many messages.
///
/// The envelope sender is the message's Return-Path when it has one, else the recipient itself,
/// so a bounce reaches the mailbox's owner and never an old correspondent. No header is added:
/// the relay adds its own `Received:`. 4xx defers the message (kept at the source, retried next
/// run); 5xx fails it alone. SMTP cannot be searched, so recovery redelivers what is pending:
/// SMTP is at-least-once inside the window between the server's 250 and the ledger's commit.
public final class SMTPSink: MailSink {
    public let url: MailURL
    let endpoint: ServerEndpoint
    let credentials: Credentials?
    let envelopeTo: String
    let logger: Logger
    private var client: SMTPClient?

    /// Computed once: it keys every ledger row.
    public let identity: String
    public var requiresCRLF: Bool { true }
    public var maxMessageSize: Int? { client?.sizeLimit }

    public init(url: MailURL, endpoint: ServerEndpoint, credentials: Credentials?, envelopeTo: String, logger: Logger) {
        self.url = url
        self.identity = url.description
        self.endpoint = endpoint
        self.credentials = credentials
        self.envelopeTo = envelopeTo
        self.logger = logger
    }

    func session() async throws -> SMTPClient {
        if let client { return client }
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let c = try await SMTPClient.open(endpoint, credentials: credentials, heloName: host.isEmpty ? "localhost" : host, logger: logger)
        client = c
        return c
    }

    /// Connects now, so the server's SIZE limit is known before the first message.
    public func prepare(mailbox: String) async throws -> TargetWatermark {
        _ = try await session()
        return TargetWatermark()
    }

    public func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        let sender = Self.envelopeSender(message.headers.value(of: "Return-Path")) ?? envelopeTo
        let eightBit = try message.contains8Bit()
        for attempt in 0..<2 {
            do {
                let reply = try await session().send(from: sender, to: [envelopeTo], message: message, eightBit: eightBit)
                return .delivered("\(reply.code) \(reply.enhanced.map { "\($0) " } ?? "")\(reply.text)")
            } catch let e as SMTPError {
                guard let reply = e.reply else { throw DeliveryError(.sinkFailed, e.description) }
                // 421: the server is closing; 452 after many messages: a per-session cap. Start a
                // new session and try this message once more.
                let sessionCap = reply.code == 452 && (reply.enhanced == "4.5.3" || reply.text.lowercased().contains("too many"))
                if attempt == 0 && (reply.code == 421 || sessionCap) {
                    await client?.quit()
                    client = nil
                    logger.notice("\(identity): \(reply); reconnecting")
                    continue
                }
                if reply.code == 421 { await client?.quit(); client = nil }
                throw DeliveryError(reply.isPermanent ? .permanent : .temporary, e.description)
            } catch let e as TransportError {
                client = nil
                throw DeliveryError(.sinkFailed, e.description)
            }
        }
        throw DeliveryError(.temporary, "\(identity): the server kept closing the session")
    }

    public func flush() async throws -> [SourceKey: StagedOutcome] { [:] }

    /// An SMTP server cannot be asked what it has: deliver again.
    public func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        logger.notice("recovery: \(record.key) was being relayed to \(identity) when the run stopped; SMTP cannot be searched, so it is relayed again")
        return .absent
    }

    public func close() async throws {
        await client?.quit()
        client = nil
    }

    /// `<jean@example.org>` → `jean@example.org`; `<>` → "" (the null sender); nil when absent or odd.
    static func envelopeSender(_ returnPath: String?) -> String? {
        guard var v = returnPath?.trimmingCharacters(in: .whitespaces), v.hasPrefix("<"), v.hasSuffix(">") else { return nil }
        v = String(v.dropFirst().dropLast())
        guard !v.contains(" "), !v.contains(">"), !v.contains("<") else { return nil }
        return v
    }
}
