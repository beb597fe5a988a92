import Crypto
import FunnelModel
import IMAPCore
import MailMessage
import MailTransport

/// What recovery has read of the target folders, so that each message is read at most once
/// however many pending intents point at the folder.
struct RecoveryCache {
    struct Folder {
        var uidValidity: UInt32
        /// The UID and size of every message at or above `from`.
        var from: UInt32
        var sizes: [(uid: UInt32, size: Int)]
        /// The SHA-256 and Message-ID of the messages whose bodies were read.
        var read: [UInt32: (sha256: String, messageID: String?)] = [:]
    }

    var folders: [String: Folder] = [:]
}

extension IMAPSink {
    /// Finds the copy a pending intent delivered, reading as little as it can: first the sizes of
    /// what arrived at or after the UIDNEXT recorded with the intent (or, in a renumbered folder,
    /// of what carries its Message-ID), then the bodies of those of its size only, which it matches
    /// by SHA-256 (what was sent is CRLF-normalised and hashed the same way). When no hash matches
    /// (a server that rewrites what it stores), by Message-ID among those of its size; when that is
    /// ambiguous, it says absent: a rare duplicate beats a loss. What recovery costs then follows
    /// what is pending, not what the folder holds.
    public func locate(_ record: PendingRecord, taken: Set<String>, unknownCopies: Int) async throws -> Presence {
        let c = try await session()
        let name = try await wireName(record.targetMailbox)
        guard let s = try? await c.select(name) else { return .absent }
        // Same UIDVALIDITY: only what arrived since the intent can be it.
        let from: UInt32 = (record.watermark.uidValidity == s.uidValidity ? record.watermark.uidNext : nil) ?? 1
        if from == 1 && record.messageID == nil {
            // A renumbered mailbox and no Message-ID to narrow the search: deliver again.
            logger.notice("recovery: \(record.key): \(name) was renumbered and the message has no Message-ID; delivering again")
            return .absent
        }
        let ref = { (uid: UInt32) in "\(s.uidValidity):\(uid)" }
        var sameSize: [UInt32]
        if from > 1 {
            sameSize = try await sizes(in: name, uidValidity: s.uidValidity, from: from, client: c)
                .filter { $0.uid >= from && $0.size == record.size }.map(\.uid)
        } else {
            // A quoted string holds printable ASCII only; an id with control or 8-bit bytes
            // cannot be searched for so, and a CR or LF in it would end the command early.
            guard let id = record.messageID.flatMap(Self.quotedSearchString) else {
                logger.notice("recovery: \(record.key): \(name) was renumbered and the message's Message-ID cannot be searched for; delivering again")
                return .absent
            }
            let uids = try await c.uidSearch("HEADER Message-ID \(id)")
            sameSize = uids.isEmpty ? [] : try await fetchSizes(UIDSet(uids: uids), client: c).filter { $0.size == record.size }.map(\.uid)
        }
        sameSize.removeAll { taken.contains(ref($0)) }  // an identical twin's copy, not this one
        guard !sameSize.isEmpty else { return .absent }
        let read = try await contents(of: sameSize, in: name, uidValidity: s.uidValidity, client: c)
        let unreadable = sameSize.filter { read[$0] == nil }
        if !unreadable.isEmpty {
            // Such a candidate can be neither ruled in nor out; if it was the copy, this duplicates.
            logger.warning("recovery: \(record.key): the server gave no content for \(unreadable.count) candidate\(unreadable.count == 1 ? "" : "s") in \(name) (UID \(unreadable.prefix(5).map(String.init).joined(separator: ", "))); they are not taken for the copy")
        }
        let byHash = sameSize.filter { read[$0]?.sha256 == record.sha256 }
        if !byHash.isEmpty && byHash.count <= unknownCopies {
            logger.notice("recovery: \(record.key): \(byHash.count) identical cop\(byHash.count == 1 ? "y" : "ies") in \(name) may belong to earlier deliveries without a UID; delivering again rather than guess")
            return .absent
        }
        if let uid = byHash.first {
            logger.notice("recovery: \(record.key) found in \(name) by SHA-256 (\(ref(uid)))")
            return .present(ref(uid))
        }
        if let id = record.messageID {
            let matches = sameSize.filter { read[$0]?.messageID == id }
            if matches.count == 1 {
                logger.notice("recovery: \(record.key) found in \(name) by Message-ID and size (UID \(matches[0])); the server changed its bytes")
                return .present(ref(matches[0]))
            }
            if matches.count > 1 {
                logger.notice("recovery: \(record.key): \(matches.count) messages in \(name) share its Message-ID and size; delivering again rather than guess")
            }
        }
        return .absent
    }

    /// The UID and size of every message of the folder at or above `from`, read once a recovery.
    private func sizes(in name: String, uidValidity: UInt32, from: UInt32, client c: IMAPClient) async throws
        -> [(uid: UInt32, size: Int)] {
        if let f = recoveryCache.folders[name], f.uidValidity == uidValidity, f.from <= from { return f.sizes }
        let sizes = try await fetchSizes(UIDSet([from...UInt32.max]), client: c).filter { $0.uid >= from }
        var folder = RecoveryCache.Folder(uidValidity: uidValidity, from: from, sizes: sizes)
        if let old = recoveryCache.folders[name], old.uidValidity == uidValidity { folder.read = old.read }
        recoveryCache.folders[name] = folder
        return sizes
    }

    private func fetchSizes(_ set: UIDSet, client c: IMAPClient) async throws -> [(uid: UInt32, size: Int)] {
        var out: [(uid: UInt32, size: Int)] = []
        var uid: UInt32?, size: Int?
        try await c.uidFetch(set, items: ["UID", "RFC822.SIZE"]) { event in
            switch event {
            case .fetchBegan: uid = nil; size = nil
            case let .fetchAttribute(.uid(u)): uid = u
            case let .fetchAttribute(.rfc822Size(n)): size = n
            case .fetchEnded: if let uid, let size { out.append((uid, size)) }
            default: break
            }
        }
        return out
    }

    /// The SHA-256 and Message-ID of these messages, reading only the bodies not read before.
    private func contents(of uids: [UInt32], in name: String, uidValidity: UInt32, client c: IMAPClient) async throws
        -> [UInt32: (sha256: String, messageID: String?)] {
        var known = recoveryCache.folders[name].flatMap { $0.uidValidity == uidValidity ? $0.read : nil } ?? [:]
        let unread = uids.filter { known[$0] == nil }
        if !unread.isEmpty {
            var hasher = SHA256()
            var uid: UInt32?
            var headers = HeaderScanner()
            // `BODY[] NIL`: the server holds no content it will show; that is not an empty message.
            var hasBody = false
            try await c.uidFetch(UIDSet(uids: unread), items: ["UID", "BODY.PEEK[]"]) { event in
                switch event {
                case .fetchBegan: hasher = SHA256(); headers = HeaderScanner(); uid = nil; hasBody = false
                case let .fetchAttribute(.uid(u)): uid = u
                case .fetchBodyBegan: hasBody = true
                case let .fetchBodyBytes(b):
                    b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    headers.consume(b)
                case .fetchEnded:
                    if let u = uid, hasBody { known[u] = (hasher.finalize().hexString, headers.messageID) }
                default: break
                }
            }
            recoveryCache.folders[name, default: RecoveryCache.Folder(uidValidity: uidValidity, from: .max, sizes: [])].read = known
        }
        return known
    }

    /// `text` as an IMAP quoted string, or nil when it holds a byte a quoted string cannot carry.
    static func quotedSearchString(_ text: String) -> String? {
        guard text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
