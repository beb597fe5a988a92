@testable import Drivers
import Foundation
import FunnelTestSupport
import Testing

/// How a Maildir++ tree spells folder names on disk (`Maildir.names`).
struct MaildirLayoutTests {
    @Test func foldersAreModifiedUTF7UnlessUTF8IsAsked() throws {
        let utf7 = Maildir(root: "/m")
        #expect(utf7.directory(of: "Reçus/Été") == "/m/.Re&AOc-us.&AMk-t&AOk-")
        #expect(utf7.directory(of: "Tom & Jerry") == "/m/.Tom &- Jerry")
        #expect(utf7.mailboxName("Re&AOc-us.&AMk-t&AOk-") == "Reçus/Été")
        let utf8 = Maildir(root: "/m", names: .utf8)
        #expect(utf8.directory(of: "Reçus/Été") == "/m/.Reçus.Été")
        #expect(utf8.mailboxName("Reçus.Été") == "Reçus/Été")
        #expect(try MailURL.parse("maildir:/m?names=utf-8").maildirNames == .utf8)
        #expect(try MailURL.parse("maildir:/m").maildirNames == .modifiedUTF7)
        #expect(throws: Error.self) { try MailURL.parse("mbox:/m?names=utf-8") }
    }

    /// A folder an earlier MailFunnel wrote in UTF-8 is still the folder of that name, read and
    /// written; a name that is not modified UTF-7 reads as written.
    @Test func aFolderInTheOtherSpellingIsStillFound() throws {
        let dir = try TemporaryDirectory()
        for sub in ["cur", "new", "tmp"] {
            try FileManager.default.createDirectory(atPath: dir.file(".Reçus/\(sub)"), withIntermediateDirectories: true)
        }
        let maildir = Maildir(root: dir.path)
        #expect(try maildir.mailboxes() == ["INBOX", "Reçus"])
        #expect(maildir.directory(of: "Reçus") == dir.file(".Reçus"))
        #expect(maildir.directory(of: "Été") == dir.file(".&AMk-t&AOk-"))
    }
}
