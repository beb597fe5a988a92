import FunnelModel
import Crypto
import Foundation
import IMAPCore
import Logging
import MailMessage
import MailTransport
import NIOCore

/// Delivers with IMAP APPEND: flags and INTERNALDATE kept, APPENDUID recorded as the target
/// reference (`uidvalidity:uid`), missing folders created, APPENDLIMIT respected.
///
/// An APPEND answered OK is durable at the server, so `flush` has nothing to do. After a crash,
/// `locate` finds what a pending intent delivered (see IMAPSink+Locate.swift).
public final class IMAPSink: MailSink {
    public let url: MailURL
    let endpoint: ServerEndpoint
    /// Asked at every login (see `CredentialProvider`).
    let login: any CredentialProvider
    let logger: Logger
    private var client: IMAPClient?
    private var delimiter: Character?
    private var existing: Set<String>?
    private var permanentFlags: [String] = []
    /// What recovery learned of the target folders (see `locate`).
    var recoveryCache = RecoveryCache()

    /// The URL without its path, computed once: it keys every ledger row.
    public let identity: String
    public var requiresCRLF: Bool { true }
    /// APPENDLIMIT, or less once a message alone was refused [TOOBIG]: one that large or larger is
    /// then skipped without being sent, here or by the run's next pages before they are fetched.
    public var maxMessageSize: Int? {
        switch (client?.appendLimit, refusedSize) {
        case let (limit?, refused?): return min(limit, refused - 1)
        case let (limit, refused): return limit ?? refused.map { $0 - 1 }
        }
    }
    /// The smallest message the server refused [TOOBIG] on its own.
    private var refusedSize: Int?

    public init(url: MailURL, endpoint: ServerEndpoint, login: any CredentialProvider, logger: Logger) {
        self.url = url
        self.identity = IMAPDriver.identity(of: url)
        self.endpoint = endpoint
        self.login = login
        self.logger = logger
    }

    func session() async throws -> IMAPClient {
        if let client { return client }
        let c = try await IMAPClient.open(endpoint, login: login, logger: logger)
        client = c
        return c
    }

    /// Logs in and learns the folder names (LIST).
    public func connect() async throws {
        _ = try await wireName("INBOX")
    }

    /// The name on the wire for an engine mailbox name (`/`-separated, decoded).
    func wireName(_ mailbox: String) async throws -> String {
        let c = try await session()
        if existing == nil {
            let entries = try await c.list()
            delimiter = entries.first(where: { $0.delimiter != nil })?.delimiter ?? "/"
            existing = Set(entries.map(\.name))
        }
        if mailbox.uppercased() == "INBOX" { return "INBOX" }
        let d = String(delimiter ?? "/")
        let translated = mailbox.split(separator: "/", omittingEmptySubsequences: true).joined(separator: d)
        return c.wireName(translated)
    }

    public func prepare(mailbox: String) async throws -> TargetWatermark {
        let c = try await session()
        let name = try await wireName(mailbox)
        if name != "INBOX", existing?.contains(name) == false {
            // Parents first, for servers that do not create them.
            let d = String(delimiter ?? "/")
            let parts = name.components(separatedBy: d)
            for i in 1...parts.count {
                let partial = parts[0..<i].joined(separator: d)
                guard existing?.contains(partial) == false else { continue }
                do {
                    try await c.create(partial)
                } catch let IMAPError.commandFailed(_, _, _, code, text, _) where code == .other(name: "ALREADYEXISTS", text: nil) || text.lowercased().contains("exist") {
                    // Someone made it meanwhile: fine.
                }
                existing?.insert(partial)
                logger.notice("\(identity): created folder \(partial)")
            }
        }
        let s = try await c.select(name)
        permanentFlags = s.permanentFlags
        return TargetWatermark(uidValidity: s.uidValidity, uidNext: s.uidNext)
    }

    /// The flags the target takes: system flags always, keywords when PERMANENTFLAGS allows them.
    func flags(_ f: MessageFlags) -> [String] {
        var out = f.imapSystemFlags.filter { $0 != "\\Deleted" }
        let anyKeyword = permanentFlags.contains("\\*")
        for k in f.keywords where anyKeyword || permanentFlags.contains(k) { out.append(k) }
        return out
    }

    /// With MULTIAPPEND the message is staged and the batch goes at `flush()`, one APPEND a
    /// folder; otherwise it is appended now.
    public func deliver(_ message: SpooledMessage, key: SourceKey, mailbox: String) async throws -> DeliveryReceipt {
        let c = try await session()
        let name = try await wireName(mailbox)
        if c.selected?.name != name && !staged.contains(where: { $0.mailbox == name }) { _ = try await prepare(mailbox: mailbox) }
        if c.has("MULTIAPPEND") {
            staged.append((key, message, name))
            return .staged
        }
        return .delivered(try await appendOne(message, to: name))
    }

    private var staged: [(key: SourceKey, message: SpooledMessage, mailbox: String)] = []

    private func appendOne(_ message: SpooledMessage, to name: String) async throws -> String {
        let c = try await session()
        do {
            let result = try await c.append([AppendItem(flags: flags(message.flags), date: message.internalDate, body: message)], to: name)
            if let r = result, let uid = r.uids.first { return "\(r.uidValidity):\(uid)" }
            return ""
        } catch let e as IMAPError {
            throw Self.classify(e)
        } catch let e as TransportError {
            throw DeliveryError(.sinkFailed, e.description)
        }
    }

    /// Sends the staged messages of each folder as one MULTIAPPEND, in the order the folders were
    /// first delivered into.
    public func flush() async throws -> [SourceKey: StagedOutcome] {
        guard !staged.isEmpty else { return [:] }
        let all = staged
        staged = []
        var order: [String] = []
        for item in all where !order.contains(item.mailbox) { order.append(item.mailbox) }
        var outcomes: [SourceKey: StagedOutcome] = [:]
        for name in order {
            outcomes.merge(try await append(all.filter { $0.mailbox == name }, to: name)) { _, new in new }
        }
        return outcomes
    }

    /// One MULTIAPPEND, which the server carries out whole or not at all (RFC 3502). If it refuses,
    /// nothing was appended. Refused for a size or a limit ([TOOBIG], [LIMIT]), without saying
    /// which message: the batch is halved until each refused part is one message, which is then
    /// skipped (a few commands, not one per message). Refused otherwise: each message is appended
    /// alone, so only the one at fault fails.
    private func append(_ batch: [(key: SourceKey, message: SpooledMessage, mailbox: String)], to name: String) async throws
        -> [SourceKey: StagedOutcome] {
        let c = try await session()
        var outcomes: [SourceKey: StagedOutcome] = [:]
        var batch = batch
        if let limit = maxMessageSize {
            // Over what the server has shown it refuses: not sent again.
            for item in batch where item.message.size > limit {
                outcomes[item.key] = .failed(DeliveryError(.overLimit, "\(item.message.size) bytes is larger than \(identity) accepts (\(limit))"))
            }
            batch.removeAll { $0.message.size > limit }
        }
        guard !batch.isEmpty else { return outcomes }
        do {
            let items = batch.map { AppendItem(flags: flags($0.message.flags), date: $0.message.internalDate, body: $0.message) }
            let result = try await c.append(items, to: name)
            let uids = result?.uids ?? []
            for (i, item) in batch.enumerated() {
                let ref = (uids.count == batch.count && result != nil) ? "\(result!.uidValidity):\(uids[i])" : ""
                outcomes[item.key] = .delivered(ref)
            }
            return outcomes
        } catch let e as IMAPError {
            guard case let .commandFailed(_, _, _, code, _, _) = e else { throw DeliveryError(.sinkFailed, e.description) }
            if Self.classify(e).errorClass == .overLimit {
                if batch.count == 1 {
                    if code == .tooBig { refusedSize = min(refusedSize ?? .max, batch[0].message.size) }
                    outcomes[batch[0].key] = .failed(Self.classify(e))
                    return outcomes
                }
                logger.notice("\(identity): APPEND of \(batch.count) messages refused (\(e)); sending them in halves to find the one at fault")
                let half = batch.count / 2
                outcomes.merge(try await append(Array(batch[..<half]), to: name)) { _, new in new }
                outcomes.merge(try await append(Array(batch[half...]), to: name)) { _, new in new }
                return outcomes
            }
            logger.notice("\(identity): APPEND of \(batch.count) messages refused (\(e)); appending them one by one")
        } catch let e as TransportError {
            throw DeliveryError(.sinkFailed, e.description)
        }
        for item in batch {
            do {
                outcomes[item.key] = .delivered(try await appendOne(item.message, to: name))
            } catch let e as DeliveryError where e.errorClass != .sinkFailed {
                outcomes[item.key] = .failed(e)
            }
        }
        return outcomes
    }

    /// NO [OVERQUOTA]/[INUSE]/[UNAVAILABLE] and THROTTLED: later. NO [TOOBIG]/[LIMIT]: over a limit,
    /// skipped. Other NO/BAD to this message: permanent for it. A session gone: the sink failed.
    static func classify(_ e: IMAPError) -> DeliveryError {
        switch e {
        case let .commandFailed(_, _, _, code, _, _):
            switch code {
            case .tooBig?, .other(name: "LIMIT", _)?:
                return DeliveryError(.overLimit, e.description)
            case .overQuota?, .throttled?, .other(name: "INUSE", _)?, .other(name: "UNAVAILABLE", _)?, .other(name: "SERVERBUG", _)?:
                return DeliveryError(.temporary, e.description)
            default:
                return DeliveryError(.permanent, e.description)
            }
        case .bye, .protocolViolation:
            return DeliveryError(.sinkFailed, e.description)
        default:
            return DeliveryError(.sinkFailed, e.description)
        }
    }

    public func close() async throws {
        _ = try await flush()
        await client?.logout()
        client = nil
    }
}

/// An APPEND reads a spooled message a chunk at a time.
extension SpooledMessage: AppendBody {}
