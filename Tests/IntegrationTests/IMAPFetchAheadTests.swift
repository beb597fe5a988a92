import Foundation
@testable import Drivers
@testable import Funnel
@testable import FunnelModel
@testable import LedgerSQLite
@testable import TransferEngine
import IMAPCore
import Logging
import MailTransport
import NIOCore
import Testing

extension Dovecot {
/// The UID FETCH of the next batch is written as the one before ends (`IMAPSource.fetch`'s
/// `upcoming`), against the real Dovecot, which runs pipelined FETCHes in parallel: each batch
/// must still get exactly its own messages, and a batch asked for ahead but never fetched must
/// not disturb the next command. With a `horizon`, one UID FETCH covers several batches, read a
/// batch per call.
@Suite struct IMAPFetchAheadTests {
    let servers: TestServers
    let seeded = imapMessages(9, tag: "ahead")

    init() throws {
        servers = try TestServers.load()
        try servers.reset("source")
    }

    func seed() async throws {
        let c = try await servers.client("source")
        try await c.seed("INBOX", seeded)
        await c.logout()
    }

    func source() throws -> IMAPSource {
        let port = try servers.port("MF_IMAPS_PORT")
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: port, tls: .implicit, caFile: servers.caFile)
        return IMAPSource(url: try MailURL.parse("imaps://source@127.0.0.1:\(port)"), endpoint: endpoint,
                          login: FixedCredentials(Credentials(user: "source", password: servers.password("source"))),
                          readOnly: true, logger: Logger(label: "test"))
    }

    /// The listed messages of INBOX in three batches of three.
    func batches(_ src: IMAPSource) async throws -> [[ListedMessage]] {
        _ = try await src.select(mailbox: "INBOX")
        var all: [ListedMessage] = []
        try await src.list(mailbox: "INBOX", pageSize: 100, after: nil) { all += $0 }
        #expect(all.count == 9)
        return stride(from: 0, to: all.count, by: 3).map { Array(all[$0..<min(all.count, $0 + 3)]) }
    }

    func fetch(_ src: IMAPSource, _ batch: [ListedMessage], upcoming: [ListedMessage]? = nil,
               horizon: [[ListedMessage]] = []) async throws -> [[UInt8]] {
        let results = try await src.fetch(batch, mailbox: "INBOX", upcoming: { upcoming }, horizon: { horizon }) {
            Spool(options: Spool.Options(directory: NSTemporaryDirectory()))
        }
        return try results.map { r in
            guard case let .spooled(_, s) = r else { throw SetupError("\(r.listed.ident) was not fetched") }
            var bytes: [UInt8] = []
            try s.forEachChunk { bytes += $0.readableBytesView }
            return bytes
        }
    }

    /// What was seeded for a batch: UIDs are consecutive from where the emptied INBOX left off.
    func expected(_ batch: [ListedMessage], of all: [[ListedMessage]]) -> [[UInt8]] {
        let first = all[0][0].locator.uid!
        return batch.map { seeded[Int($0.locator.uid! - first)].bytes }
    }

    @Test func eachBatchAskedForAheadGetsItsOwnMessages() async throws {
        try await seed()
        let src = try source()
        let b = try await batches(src)
        #expect(try await fetch(src, b[0], upcoming: b[1]) == expected(b[0], of: b))
        // Asked for as batch 0's response ended, before this call was made.
        #expect(src.sentAhead?.set == UIDSet(uids: b[1].compactMap(\.locator.uid)))
        #expect(try await fetch(src, b[1], upcoming: b[2]) == expected(b[1], of: b))
        #expect(try await fetch(src, b[2], upcoming: nil) == expected(b[2], of: b))
        #expect(src.sentAhead == nil)
        _ = try await src.close()
    }

    @Test func aBatchAskedForAheadButNotFetchedIsReadAndDropped() async throws {
        try await seed()
        let src = try source()
        let b = try await batches(src)
        // Batch 1 is asked for ahead, but batch 2 is fetched next: batch 1's response is read
        // first, and none of its messages end up in batch 2's.
        _ = try await fetch(src, b[0], upcoming: b[1])
        #expect(try await fetch(src, b[2], upcoming: b[1]) == expected(b[2], of: b))
        // Another command (here SELECT) while a batch is asked for ahead: answered as usual.
        #expect(src.sentAhead != nil)
        let info = try await src.select(mailbox: "INBOX")
        #expect(info.expectedMessages == 9)
        #expect(src.sentAhead == nil)
        #expect(try await fetch(src, b[1], upcoming: b[0]) == expected(b[1], of: b))
        // Closing with a batch still asked for ahead logs out cleanly.
        _ = try await src.close()
    }

    /// With a horizon, one UID FETCH asks for the batch and those after it, and each call reads
    /// no further than its own batch: the rest stays unread until its call comes.
    @Test func oneFetchForTheBatchesAheadIsReadABatchPerCall() async throws {
        try await seed()
        let src = try source()
        let b = try await batches(src)
        #expect(try await fetch(src, b[0], horizon: [b[1], b[2]]) == expected(b[0], of: b))
        let w = try #require(src.window)
        #expect(w.command.set == UIDSet(uids: b.joined().compactMap(\.locator.uid)))
        #expect(w.outstanding == Set(b[1...].joined().compactMap(\.locator.uid)), "read past its batch")
        #expect(!w.ended && w.early.isEmpty)
        #expect(try await fetch(src, b[1], horizon: [b[2]]) == expected(b[1], of: b))
        #expect(src.window === w, "a batch inside the window must not start another command")
        #expect(try await fetch(src, b[2], horizon: []) == expected(b[2], of: b))
        #expect(src.window == nil, "the last batch reads the command to its end")
        // The session is free for other commands.
        #expect(try await src.select(mailbox: "INBOX").expectedMessages == 9)
        _ = try await src.close()
    }

    /// Batches asked for out of the window's order still get their own messages (those that
    /// arrive first are kept for their call); a batch outside the window, or another command,
    /// reads the rest of the window and drops it; closing in the middle of a window drops the
    /// connection rather than reading the rest.
    @Test func aWindowReadOutOfOrderOrLeftEarlyStaysCorrect() async throws {
        try await seed()
        let src = try source()
        let b = try await batches(src)
        _ = try await fetch(src, b[0], horizon: [b[1], b[2]])
        #expect(try await fetch(src, b[2], horizon: []) == expected(b[2], of: b))
        #expect(src.window?.early.count == 3, "batch 1 arrived first and is kept for its call")
        #expect(try await fetch(src, b[1], horizon: []) == expected(b[1], of: b))
        #expect(src.window == nil)

        _ = try await fetch(src, Array(b[0].prefix(2)), horizon: [Array(b[0].suffix(1)), b[1]])
        let partial = Array(b[1].prefix(1)) + Array(b[2].prefix(1))  // not inside the window
        #expect(try await fetch(src, partial, horizon: []) == expected(partial, of: b))
        #expect(src.window == nil)

        _ = try await fetch(src, b[0], horizon: [b[1], b[2]])
        #expect(try await src.select(mailbox: "INBOX").expectedMessages == 9)
        #expect(src.window == nil)

        _ = try await fetch(src, b[0], horizon: [b[1], b[2]])
        _ = try await src.close()
        #expect(src.window == nil)
        // A new session after the dropped one works as usual.
        #expect(try await fetch(src, b[1], horizon: []) == expected(b[1], of: b))
        _ = try await src.close()
    }

    /// A whole transfer in batches of two: every message arrives once, each with its own bytes.
    @Test func aTransferInSmallBatchesDeliversEveryMessageOnce() async throws {
        try await seed()
        let dir = try workDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = EndpointSettings(passwordVariable: "UNUSED")
        settings.secret = Config.Secret(inline: servers.password("source"))
        settings.caFile = servers.caFile
        let s = try await runTransfer(source: "imaps://source@127.0.0.1:\(try servers.port("MF_IMAPS_PORT"))",
                                      target: "maildir:\(dir)/md", ledgerPath: "\(dir)/ledger.sqlite",
                                      limits: .init(maxMessages: 2), sourceSettings: settings)
        #expect(s.delivered == 9)
        #expect(s.failed == 0)
        let delivered = try maildirMessages("\(dir)/md").sorted { $0.lexicographicallyPrecedes($1) }
        #expect(delivered.map(crlf) == seeded.map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) })
    }
}
}
