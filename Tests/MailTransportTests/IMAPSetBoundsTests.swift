import IMAPCore
import Logging
@testable import MailTransport
import NIOCore
import Testing

/// Sets a server names are never expanded past what they can mean: a search result holds no more
/// UIDs than the mailbox has messages, an APPENDUID no more than the messages appended.
@Suite struct IMAPSetBoundsTests {
    @Test func aSearchResultNamingMoreMessagesThanTheMailboxHoldsIsRefused() async throws {
        let (client, server) = try await IMAPResponseHandlingTests.imap([
            .init("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\na1 OK [READ-WRITE] done\r\n"),
            .init("* ESEARCH (TAG \"a2\") UID ALL 1:3\r\na2 OK done\r\n"),
            .init("* ESEARCH (TAG \"a3\") UID ALL 1:5\r\na3 OK done\r\n"),
            .init("* ESEARCH (TAG \"a4\") UID ALL 1:4294967294\r\na4 OK done\r\n"),
        ])
        defer { server.stop() }
        _ = try await client.select("INBOX")
        #expect(try await client.uidSearch("ALL") == [1, 2, 3])
        do {
            let uids = try await client.uidSearch("ALL")
            Issue.record("five UIDs accepted from a mailbox of three: \(uids)")
            await client.close()
            return
        } catch let error as IMAPError {
            guard case .protocolViolation = error else { Issue.record("\(error)"); return }
        }
        // The session is still in step: the next refusal is of the next result.
        do {
            _ = try await client.uidSearch("ALL")
            Issue.record("four billion UIDs accepted")
        } catch let IMAPError.protocolViolation(_, detail) {
            #expect(detail.contains("4294967294 UIDs"))
        }
        await client.close()
    }

    struct Bytes: AppendBody {
        let bytes: [UInt8]
        var size: Int { bytes.count }
        func readChunk(at offset: Int, maxLength: Int) throws -> ByteBuffer {
            ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + maxLength)])
        }
    }

    /// APPENDUID names one UID a message appended; any other count cannot be matched to them.
    /// (A body of one line: the scripted server answers each line it reads.)
    @Test func anAppendUIDOfAnotherSizeIsNotTaken() async throws {
        let (client, server) = try await IMAPResponseHandlingTests.imap([
            .init("a1 OK [APPENDUID 1 5:6] done\r\n"), .init(""),
            .init("a2 OK [APPENDUID 1 1:4294967294] done\r\n"), .init(""),
            .init("a3 OK [APPENDUID 1 7] done\r\n"), .init(""),
        ])
        defer { server.stop() }
        let one = [AppendItem(flags: [], date: nil, body: Bytes(bytes: Array("hello".utf8)))]
        let two = try await client.append(one, to: "INBOX")
        #expect(two == nil)
        let huge = try await client.append(one, to: "INBOX")
        #expect(huge == nil)
        let right = try await client.append(one, to: "INBOX")
        #expect(right?.uidValidity == 1 && right?.uids == [7])
        await client.close()
    }
}
