import Foundation
@testable import Funnel
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
}
