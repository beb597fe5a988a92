import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import Testing

/// An mbox listing names each message by the hash of its bytes; fetching trusts the listed byte
/// ranges only while the file is provably the one listed, and checks every message otherwise.
@Suite struct MboxSourceTests {
    let dir: String
    let path: String
    let bodies = ["one", "two", "three"].map { "From: a@example.org\nSubject: \($0)\n\nthe body of \($0)\n" }

    init() throws {
        dir = NSTemporaryDirectory() + "/mf-mbox-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/in.mbox"
        let text = bodies.map { "From a@example.org Sat Jan  3 01:05:34 2004\n" + $0 + "\n" }.joined()
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func listed(_ source: MboxSource) async throws -> [ListedMessage] {
        var all: [ListedMessage] = []
        try await source.list(mailbox: "INBOX", pageSize: 100, after: nil) { all += $0 }
        return all
    }

    /// Fetched as for IMAP (normalised to CRLF, where the source's bytes and the delivered ones
    /// differ, so their two hashes differ too when both are taken).
    func fetch(_ source: MboxSource, _ messages: [ListedMessage]) async throws -> [FetchResult] {
        var options = Spool.Options(directory: dir)
        options.normalizeToCRLF = true
        return try await source.fetch(messages, mailbox: "INBOX") { Spool(options: options) }
    }

    func spooled(_ r: FetchResult) -> SpooledMessage? {
        if case let .spooled(_, s) = r { return s }
        return nil
    }

    func text(_ s: SpooledMessage) throws -> String {
        var bytes: [UInt8] = []
        try s.forEachChunk { bytes += $0.readableBytesView }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// File times tick every few milliseconds: a pause longer than a tick, so a write lands in a
    /// later one than what came before.
    func pause() { usleep(50_000) }

    @Test func aFileLeftAloneSinceListingIsNotHashedAgain() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        pause()
        let source = MboxSource(path: path)
        source.settleSeconds = 0.02
        let results = try await fetch(source, try await listed(source))
        let messages = results.compactMap(spooled)
        #expect(try messages.map(text) == bodies.map { $0.replacingOccurrences(of: "\n", with: "\r\n") })
        // Only the delivered bytes were hashed: the source's hash was not taken.
        #expect(messages.allSatisfy { $0.sourceSHA256 == $0.sha256 })
    }

    @Test func aFileWrittenAfterListingIsCheckedMessageByMessage() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        pause()
        let source = MboxSource(path: path)
        source.settleSeconds = 0.02
        let all = try await listed(source)
        pause()
        // The second message's body changes in place: same size, same offsets.
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let at = data.range(of: Data("body of two".utf8))!.lowerBound
        data[at] = UInt8(ascii: "B")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: data)
        try handle.close()
        let results = try await fetch(source, all)
        #expect(spooled(results[0]) != nil && spooled(results[2]) != nil)
        guard case let .failed(_, error) = results[1] else {
            Issue.record("a message changed since listing was fetched")
            return
        }
        #expect(error.message.contains("changed since it was listed"))
        #expect(results.compactMap(spooled).allSatisfy { $0.sourceSHA256 != $0.sha256 })
    }

    @Test func aFileChangedJustBeforeListingIsCheckedToo() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Written a moment ago: a write in the same clock tick could go unseen, so no trust.
        let source = MboxSource(path: path)
        let messages = try await fetch(source, try await listed(source)).compactMap(spooled)
        #expect(messages.count == 3)
        #expect(messages.allSatisfy { $0.sourceSHA256 != $0.sha256 })
    }

    /// The first page is small (delivery starts before the whole file is read), the next ones
    /// full; identical copies are told apart across pages, and every range holds its message.
    @Test func listingStartsWithASmallPageAndRanksTwinsAcrossPages() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let count = MboxSource.firstPageSize + 10
        // Every message twice over: a twin of message i is message i + count/2.
        let texts = (0..<count).map { "From: a@example.org\nSubject: m\($0 % (count / 2))\n\nbody \($0 % (count / 2))\n" }
        try texts.map { "From a@example.org Sat Jan  3 01:05:34 2004\n" + $0 + "\n" }.joined()
            .write(toFile: path, atomically: false, encoding: .utf8)
        let source = MboxSource(path: path)
        var pages: [[ListedMessage]] = []
        try await source.list(mailbox: "INBOX", pageSize: 5000, after: nil) { pages.append($0) }
        #expect(pages.map(\.count) == [MboxSource.firstPageSize, 10])
        let all = pages.flatMap { $0 }
        #expect(Set(all.map(\.ident)).count == count)
        #expect(all[count / 2].ident == all[0].ident.dropLast(2) + "/1")
        let fetched = try await fetch(source, all).compactMap(spooled)
        #expect(try fetched.map(text) == texts.map { $0.replacingOccurrences(of: "\n", with: "\r\n") })
        // A page size below the first page's: every page is that size.
        pages = []
        try await source.list(mailbox: "INBOX", pageSize: 400, after: nil) { pages.append($0) }
        #expect(pages.map(\.count) == [400, 400, 234])
    }

    @Test func aFileThatIsNotAnMboxIsRefusedNamingWhatItHolds() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "Subject: not an mbox\n\nhello\n".write(toFile: path, atomically: false, encoding: .utf8)
        let source = MboxSource(path: path)
        await #expect(throws: FunnelError.self) { try await listed(source) }
        do {
            _ = try await listed(source)
        } catch {
            #expect("\(error)".contains("not an mbox file"))
        }
    }
}
