import Foundation
@testable import Drivers
import FunnelModel
import FunnelTestSupport
import NIOCore
import Testing

/// How a written message moves from tmp/ into place.
struct MaildirSinkTests {
    @Test func aMessageMovesIntoPlaceAndNeverOverAnother() throws {
        let dir = try TemporaryDirectory()
        let tmp = "\(dir.path)/tmp-one", final = "\(dir.path)/final"
        try Data("first".utf8).write(to: URL(fileURLWithPath: tmp))
        try MaildirSink.moveIntoPlace(tmp, final)
        #expect(!FileManager.default.fileExists(atPath: tmp))
        #expect(try String(contentsOfFile: final, encoding: .utf8) == "first")

        // The same name again (the key delivered before, its ledger lost): the one there stays,
        // and ours goes.
        let again = "\(dir.path)/tmp-two"
        try Data("second".utf8).write(to: URL(fileURLWithPath: again))
        try MaildirSink.moveIntoPlace(again, final)
        #expect(!FileManager.default.fileExists(atPath: again))
        #expect(try String(contentsOfFile: final, encoding: .utf8) == "first")

        // A file that is not there is an error that names the place.
        #expect(throws: DeliveryError.self) { try MaildirSink.moveIntoPlace("\(dir.path)/missing", "\(dir.path)/elsewhere") }
    }

    /// What a flush leaves to do: until it is done the messages are only in tmp/, where no
    /// reader looks; then they are in place and tmp/ is empty.
    @Test func aFlushCanLeaveItsSyncsAndMovesForLater() async throws {
        let dir = try TemporaryDirectory()
        let sink = MaildirSink(path: dir.file("md"))
        _ = try await sink.prepare(mailbox: "INBOX")
        let spool = Spool(options: Spool.Options(directory: dir.path))
        try spool.append(ByteBuffer(string: "Subject: one\n\nbody\n"))
        let key = SourceKey(account: "test", mailbox: "INBOX", uidValidity: 1, ident: "1")
        _ = try await sink.deliver(spool.finish(), key: key, mailbox: "INBOX")
        let (outcomes, settle) = try await sink.flushLeavingSettlement()
        #expect(outcomes.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("md/tmp")).count == 1)
        #expect(try maildirContents(dir.file("md")).isEmpty)
        try #require(settle).run()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("md/tmp")).isEmpty)
        #expect(try maildirContents(dir.file("md")).count == 1)
        // Nothing more written: nothing left to do.
        #expect(try await sink.flushLeavingSettlement().settle == nil)
    }
}
