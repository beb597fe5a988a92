@testable import IMAPCore
import Testing

/// The server's side of a `-vv` trace: its lines as sent, whatever the reads cut, with literals
/// (message bodies) as their size.
struct IMAPTraceLinesTests {
    static let wire = "* OK ready\r\n* 1 FETCH (UID 7 BODY[] {10}\r\nhello\r\nyou)\r\n* 2 FETCH (UID 8 BODY[] {3+}\r\nabc)\r\na1 OK done\r\n"

    @Test(arguments: [1, 2, 5, 13, 1000])
    func linesAsSentWithLiteralsAsTheirSize(_ readSize: Int) {
        var cutter = IMAPTraceLines()
        var lines: [String] = []
        let bytes = Array(Self.wire.utf8)
        var i = 0
        while i < bytes.count {
            cutter.feed(bytes[i..<min(bytes.count, i + readSize)]) { lines.append($0) }
            i += readSize
        }
        #expect(lines == ["* OK ready", "* 1 FETCH (UID 7 BODY[] {10} <10 bytes>", ")", "* 2 FETCH (UID 8 BODY[] {3+} <3 bytes>", ")",
                          "a1 OK done"])
    }
}
