import IMAPCore
import NIOCore
import Testing

/// A hostile or broken server must not crash us nor drive memory or time without bound, whatever
/// one response holds.
struct ResponseLimitsTests {
    /// A number no Int holds is a response we cannot read, never a trap.
    @Test(arguments: [
        "* 1 FETCH (UID 7 RFC822.SIZE 9223372036854775808)\r\n",
        "* 1 FETCH (UID 7 RFC822.SIZE 18446744073709551616)\r\n",
        "* 1 FETCH (UID 4294967296)\r\n",
        "* 1 FETCH (MODSEQ (99999999999999999999999))\r\n",
        "* 99999999999 EXISTS\r\n",
        "* STATUS INBOX (MESSAGES 99999999999999999999999)\r\n",
        "* OK [UIDNEXT 99999999999] x\r\n",
    ])
    func numbersTooLargeAreNotATrap(_ wire: String) throws {
        let events = try parseAll(wire)
        #expect(events.count == 1)
        switch events.first {
        case .unreadable?, .untagged(.status(.ok, code: .other?, text: _))?: break
        default: Issue.record("\(events)")
        }
    }

    @Test func theLargestSizeAnIntHoldsIsRead() throws {
        #expect(try parseAll("* 1 FETCH (RFC822.SIZE 9223372036854775807)\r\n")
            == [.fetchBegan(sequence: 1), .fetchAttribute(.rfc822Size(Int.max)), .fetchEnded])
    }

    /// Many literals of the largest size each, in one response, are refused once they add up to
    /// the response limit, before the rest is read.
    @Test func literalsAddingUpPastTheResponseLimitAreRefused() throws {
        let mib = String(repeating: "x", count: 1 << 20)
        var wire = "* ID ("
        for _ in 0..<6 { wire += "{\(1 << 20)}\r\n" + mib + " " }
        wire += ")\r\n"
        #expect(throws: IMAPParseError.self) { try parseAll(wire) }
        // Each literal alone is within its own limit: it is their sum that is refused.
        #expect(try parseAll("* ID ({\(1 << 20)}\r\n" + mib + ")\r\n").count == 1)
        var fetch = "* 1 FETCH (X-A ("
        for _ in 0..<6 { fetch += "{\(1 << 20)}\r\n" + mib + " " }
        fetch += "))\r\n"
        #expect(throws: IMAPParseError.self) { try parseAll(fetch) }
        #expect(throws: IMAPParseError.self) {
            try parseAll("* LIST () \"/\" {600}\r\n" + String(repeating: "y", count: 600) + " {600}\r\n" + String(repeating: "y", count: 600) + "\r\n",
                         limits: .init(maxResponseSize: 1000))
        }
    }

    /// Time grows with the size of a response, not with the square of its literals.
    @Test func manyLiteralsInOneResponseCostTimeInProportion() throws {
        var wire = "* ID ("
        for i in 0..<25_000 { wire += "{1}\r\n\(i % 10) " }
        wire += ")\r\n"
        let started = ContinuousClock.now
        let events = try parseAll(wire)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(events.count == 1)
        var fetch = "* 1 FETCH (UID 3 X-MANY ("
        for i in 0..<25_000 { fetch += "{1}\r\n\(i % 10) " }
        fetch += "))\r\n"
        let again = ContinuousClock.now
        #expect(try parseAll(fetch).count == 4)
        #expect(ContinuousClock.now - again < .seconds(5))
    }

    /// A result set stays a set: its size is known without expanding it.
    @Test func searchResultsAreNotExpanded() throws {
        let events = try parseAll("* ESEARCH (TAG \"a3\") UID ALL 1:4294967294\r\n")
        #expect(events == [.untagged(.esearch(tag: "a3", uid: true, items: ["ALL": "1:4294967294"]))])
        let set = try #require(UIDSet("1:4294967294,7"))
        #expect(set.count == 4_294_967_295)
        #expect(UIDSet("1:*")!.count == UInt64(UInt32.max))
        #expect(UIDSet("3,5:7")!.count == 4)
    }
}
