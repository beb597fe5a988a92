import FunnelModel
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
///
/// When the server has PIPELINING and CHUNKING, a batch is staged and sent at `flush()` as one
/// pipelined stream (MAIL, RCPT, BDAT LAST per message, replies read behind the writes): no round
/// trip per message. A message refused there is sent again alone after RSET, so a refusal is
/// always its own and never the echo of a transaction an earlier refusal left open.
public final class SMTPSink: MailSink {
    public let url: MailURL
    let endpoint: ServerEndpoint
    /// Asked at every login (see `CredentialProvider`); nil when the relay takes mail without one.
    let login: (any CredentialProvider)?
    let envelopeTo: String
    let logger: Logger
    private var client: SMTPClient?

    /// Computed once: it keys every ledger row.
    public let identity: String
    public var requiresCRLF: Bool { true }
    public var maxMessageSize: Int? { client?.sizeLimit }

    public init(url: MailURL, endpoint: ServerEndpoint, login: (any CredentialProvider)?, envelopeTo: String, logger: Logger) {
        self.url = url
        self.identity = SMTPDriver.identity(of: url)
        self.endpoint = endpoint
        self.login = login
        self.envelopeTo = envelopeTo
        self.logger = logger
    }

    func session() async throws -> SMTPClient {
        if let client { return client }
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let c = try await SMTPClient.open(endpoint, login: login, heloName: host.isEmpty ? "localhost" : host, logger: logger)
        client = c
        return c
    }

    public func connect() async throws {
        _ = try await session()
    }

    /// Connects now, so the server's SIZE limit is known before the first message.
    public func prepare(mailbox: String) async throws -> TargetWatermark {
        _ = try await session()
        return TargetWatermark()
    }

    public func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        let sender = Self.envelopeSender(message.headers.value(of: "Return-Path")) ?? envelopeTo
        let eightBit = try message.contains8Bit()
        let pipelining: Bool
        do {
            pipelining = try await session().canPipelineMessages
        } catch let e as TransportError {
            throw DeliveryError(.sinkFailed, e.description)
        } catch let e as SMTPError {
            throw DeliveryError(.sinkFailed, e.description)
        }
        if pipelining {
            staged.append(Staged(key: key, envelope: SMTPClient.Envelope(from: sender, to: envelopeTo, message: message, eightBit: eightBit)))
            return .staged
        }
        return .delivered(try await send(SMTPClient.Envelope(from: sender, to: envelopeTo, message: message, eightBit: eightBit)))
    }

    struct Staged {
        var key: SourceKey
        var envelope: SMTPClient.Envelope
    }

    private var staged: [Staged] = []

    /// Sends one message in its own round trips; the target reference is the final reply.
    private func send(_ envelope: SMTPClient.Envelope) async throws -> String {
        for attempt in 0..<2 {
            do {
                let reply = try await session().send(from: envelope.from, to: [envelope.to], message: envelope.message,
                                                     eightBit: envelope.eightBit)
                return Self.reference(reply)
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

    static func reference(_ reply: SMTPReply) -> String {
        "\(reply.code) \(reply.enhanced.map { "\($0) " } ?? "")\(reply.text)"
    }

    /// Sends the staged batch pipelined and says how each message fared. A message whose answer
    /// was lost with the connection is left out: it may have been accepted, so it stays `pending`.
    public func flush() async throws -> [SourceKey: StagedOutcome] {
        guard !staged.isEmpty else { return [:] }
        let batch = staged
        staged = []
        let c: SMTPClient
        do {
            c = try await session()
        } catch {
            throw DeliveryError(.sinkFailed, "\(error)")
        }
        let (answered, lost) = await c.sendPipelined(batch.map(\.envelope))
        var outcomes: [SourceKey: StagedOutcome] = [:]
        var again: [Int] = []
        var closing = false
        for (i, answer) in answered.enumerated() {
            switch answer {
            case let .success(reply): outcomes[batch[i].key] = .delivered(Self.reference(reply))
            case let .failure(e):
                if e.reply?.code == 421 { closing = true }
                again.append(i)
            }
        }
        if let lost {
            client = nil
            if closing {
                // After 421 the server read nothing more: what followed was never taken.
                again += answered.count..<batch.count
                logger.notice("\(identity): the server closed the session (421); sending the rest again on a new one")
            } else {
                logger.warning("\(identity): connection lost after \(answered.count) of \(batch.count) pipelined messages (\(lost)); the \(batch.count - answered.count) unanswered stay pending")
            }
        } else if !again.isEmpty {
            do {
                try await c.reset()
            } catch {
                client = nil
            }
        }
        // Each refused message again, alone: its own reply decides.
        for (n, i) in again.enumerated() {
            do {
                outcomes[batch[i].key] = .delivered(try await send(batch[i].envelope))
            } catch let e as DeliveryError where e.errorClass != .sinkFailed {
                outcomes[batch[i].key] = .failed(e)
            } catch let e as DeliveryError {
                // The session is gone: this one is unknown; the rest were certainly not accepted.
                for j in again.dropFirst(n + 1) {
                    outcomes[batch[j].key] = .failed(DeliveryError(.temporary, "not attempted: \(e.message)"))
                }
                break
            }
        }
        return outcomes
    }

    /// An SMTP server cannot be asked what it has: deliver again.
    public func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        logger.notice("recovery: \(record.key) was being relayed to \(identity) when the run stopped; SMTP cannot be searched, so it is relayed again")
        return .absent
    }

    public func close() async throws {
        _ = try await flush()
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
