import Foundation
import IMAPCore
import NIOCore
import Testing

/// The recorded responses of real servers in `Fixtures/` (see its README): every line of every
/// file is read, none passed over, fed whole and in small pieces; and for the ones that carry
/// what a fetcher needs, the values are the server's.
struct RecordedSessionTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static var names: [String] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return all.filter { $0.hasSuffix(".txt") }.sorted()
    }

    /// A file's bytes with CRLF line ends, as the server sent them.
    static func wire(_ name: String) throws -> [UInt8] {
        let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 16)
        for (i, b) in bytes.enumerated() {
            if b == 0x0A && (i == 0 || bytes[i - 1] != 0x0D) { out.append(0x0D) }
            out.append(b)
        }
        return out
    }

    static func events(_ name: String, chunk: Int = .max) throws -> [IMAPResponseEvent] {
        try parseAll(wire(name), chunk: chunk)
    }

    @Test func thereAreRecordingsOfEachServer() {
        for server in ["gmail", "exchange", "domino", "yahoo", "yandex", "zoho", "icloud", "cyrus", "dovecot"] {
            #expect(Self.names.contains { $0.hasPrefix(server + "-") }, "no recording of \(server)")
        }
    }

    @Test(arguments: names)
    func everyLineIsRead(_ name: String) throws {
        let whole = try Self.events(name)
        #expect(!whole.isEmpty)
        for case let .unreadable(u) in whole { Issue.record("\(name): passed over \(u.text): \(u.problem)") }
        // A command's recording ends with its tagged completion; a greeting's with the greeting.
        if case let .tagged(t)? = whole.last {
            #expect(t.tag == "A########" && t.status == .ok)
        } else {
            #expect(name.hasSuffix("greeting.txt"), "\(name) ends with \(String(describing: whole.last))")
        }
        #expect(try Self.events(name, chunk: 7) == whole)
    }

    static func untagged(_ name: String) throws -> [UntaggedResponse] {
        try events(name).compactMap { if case let .untagged(u) = $0 { return u } else { return nil } }
    }

    /// The attributes of each FETCH response, by message number, and what its bodies held.
    static func fetches(_ name: String) throws -> [(sequence: UInt32, attributes: [FetchAttribute], bodies: [String: [UInt8]?])] {
        var out: [(sequence: UInt32, attributes: [FetchAttribute], bodies: [String: [UInt8]?])] = []
        var section = ""
        for e in try events(name) {
            switch e {
            case let .fetchBegan(n): out.append((n, [], [:]))
            case let .fetchAttribute(a): out[out.count - 1].1.append(a)
            case let .fetchBodyBegan(s, _): section = s; out[out.count - 1].2[s] = []
            case let .fetchBodyBytes(b): out[out.count - 1].2[section]!! += b.readableBytesView
            case let .fetchBodyNil(s): out[out.count - 1].2[s] = .some(nil)
            default: break
            }
        }
        return out
    }

    @Test func gmailStatusKeepsTheCountsAndPassesOverTheRest() throws {
        #expect(try Self.untagged("gmail-status-inbox.txt") == [.mailboxStatus(mailbox: "INBOX", items: [
            "HIGHESTMODSEQ": 41234, "MESSAGES": 60, "RECENT": 0, "UIDNEXT": 410, "UIDVALIDITY": 1, "UNSEEN": 0, "SIZE": 1024])])
        #expect(try Self.untagged("gmail-status-inbox-appendlimit-nil.txt") == [.mailboxStatus(mailbox: "INBOX", items: [:])])
        let listed = try Self.untagged("gmail-list-all.txt")
        let names = listed.compactMap { if case let .list(e) = $0 { return e.name } else { return nil } }
        #expect(names.contains("+Folder") && names.contains("[Gmail]/All Mail") && names.contains("INBOX"))
        #expect(listed.contains(.mailboxStatus(mailbox: "+Folder", items: [
            "HIGHESTMODSEQ": 41234, "MESSAGES": 6, "RECENT": 0, "UIDNEXT": 7, "UIDVALIDITY": 1, "UNSEEN": 0, "SIZE": 1024])))
    }

    @Test func delimitersAndLiteralNames() throws {
        let entries = try Self.untagged("common-list-nil-folder-delim.txt").compactMap { u -> ListEntry? in
            if case let .list(e) = u { return e } else { return nil }
        }
        #expect(entries.map(\.name) == ["INBOX", "Folder1", "Folder2"])
        #expect(entries.map(\.delimiter) == ["/", nil, nil])
        #expect(try Self.untagged("domino-list-inbox.txt") == [.list(ListEntry(attributes: ["\\Noinferiors", "\\HasNoChildren"], delimiter: "\\", name: "Inbox"))])
        #expect(try Self.untagged("common-list-literal-subfolders.txt").last == .list(ListEntry(attributes: ["\\HasNoChildren"], delimiter: "/", name: "Literal Folder Name")))
        #expect(try Self.untagged("common-status-literal-folder.txt") == [.mailboxStatus(mailbox: "Literal Folder Name", items: ["MESSAGES": 60])])
    }

    @Test func dominoItemsInExtraParenthesesKeepTheirUIDs() throws {
        let fetches = try Self.fetches("domino-fetch-extra-parens.txt")
        #expect(fetches.count > 10)
        for f in fetches {
            guard case let .uid(uid)? = f.attributes.first else { Issue.record("no UID in \(f.sequence)"); continue }
            #expect(uid == 14933 + f.sequence)
        }
    }

    @Test func yandexMissingContentIsNoContent() throws {
        let fetches = try Self.fetches("yandex-getbodypart-missing-content.txt")
        #expect(fetches.count == 1)
        #expect(fetches[0].attributes == [.uid(3016)])
        #expect(fetches[0].bodies["BODY[2.MIME]"]??.count == 145)
        #expect(fetches[0].bodies["BODY[2]"] == .some(nil))
    }

    @Test func zohoNegativeModSeqIsKeptAsSentAndTheUIDsAreRead() throws {
        let fetches = try Self.fetches("zoho-fetch-negative-modseq-values.txt")
        #expect(fetches.count > 40)
        #expect(fetches.allSatisfy { f in f.attributes.contains { if case .uid = $0 { return true } else { return false } } })
        #expect(fetches.contains { $0.attributes.contains(.other(name: "MODSEQ", value: "(-1)")) })
        #expect(fetches.contains { $0.attributes.contains(.modSeq(0)) })
    }

    @Test func gmailBodies() throws {
        let big = try Self.fetches("gmail-fetch.1.txt")
        #expect(big.count == 1 && big[0].attributes.first == .uid(1))
        #expect(big[0].bodies["BODY[]"]??.count == 181_614)
        #expect(try Self.fetches("gmail-fetch-nil.txt")[0].bodies["BODY[1.TEXT]<0>"] == .some(nil))
        #expect(try Self.fetches("gmail-fetch-quoted-string.txt")[0].bodies["BODY[1.TEXT]<0>"]??.count == 44)
        let labels = try Self.fetches("gmail-set-labels.txt")
        #expect(labels.allSatisfy { $0.attributes.first == .other(name: "X-GM-LABELS", value: "(\\Important \"Custom Label\" NIL)") })
    }

    @Test func selectGivesWhatAFetcherNeeds() throws {
        let yahoo = try Self.untagged("yahoo-examine-inbox.txt")
        #expect(yahoo.contains(.status(.ok, code: .uidValidity(1_595_903_349), text: "UIDs valid")))
        #expect(yahoo.contains(.exists(1)))
        let zoho = try Self.untagged("zoho-examine-gesendet.txt")
        #expect(zoho.contains(.status(.ok, code: .highestModSeq(1_706_092_971_947_030_001), text: "")))
        #expect(zoho.contains(.status(.ok, code: .uidValidity(2), text: "UIDs valid ")))
        let dovecot = try Self.untagged("dovecot-select-unittests-messages-qresync.txt")
        #expect(dovecot.contains(.vanished(earlier: true, uids: UIDSet([8...8]))))
    }
}
