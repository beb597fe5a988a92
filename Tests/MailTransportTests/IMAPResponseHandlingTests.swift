import IMAPCore
import Logging
@testable import MailTransport
import NIOCore
import Testing

/// How the IMAP client reacts to responses it cannot read: an untagged one is passed over and the
/// session goes on; a FETCH it cannot read during a UID FETCH is an error, as passing over it
/// could lose the message; a status text is never taken for a literal.
@Suite struct IMAPResponseHandlingTests {
    static func imap(_ steps: [ScriptedServer.Step]) async throws -> (IMAPClient, ScriptedServer) {
        try await StreamedResponseTests.imap(steps, readTimeout: .seconds(5))
    }

    @Test func anUnreadableUntaggedResponseIsPassedOver() async throws {
        let (client, server) = try await Self.imap([
            .init("* LIST (\\X \"/\" INBOX\r\n* STATUS INBOX (MESSAGES)\r\n* 1 FETCH (FLAGS (\\Seen) X-BAD (\r\n* 4 EXISTS\r\na1 OK done\r\n"),
            .init("a2 OK done\r\n"),
        ])
        defer { server.stop() }
        try await client.noop()
        #expect(client.lastExists == 4)
        try await client.noop()
        await client.close()
    }

    @Test func anUnreadableFetchDuringAUIDFetchIsAnErrorNotACrash() async throws {
        let (client, server) = try await Self.imap([
            .init("* 1 FETCH (UID 7 RFC822.SIZE 9223372036854775808)\r\na1 OK done\r\n"),
        ])
        defer { server.stop() }
        do {
            _ = try await StreamedResponseTests.fetchBodies(client)
            Issue.record("an unreadable FETCH was passed over during UID FETCH")
        } catch let error as IMAPError {
            guard case .protocolViolation = error else { Issue.record("\(error)"); return }
        }
        await client.close()
    }

    /// What the command asked for, unread, could lose or hide mail: a folder, the UIDs a deletion
    /// is judged by, whether a mailbox has mail.
    @Test(arguments: [
        ("* LIST (\\X \"/\" INBOX\r\na1 OK done\r\n", IMAPCommand.list(reference: "", pattern: "*", returnSpecialUse: false)),
        ("* ESEARCH (TAG \"a1\") UID ALL 1:x\r\na1 OK done\r\n", IMAPCommand.uidSearch("DELETED")),
        ("* SEARCH 1 x\r\na1 OK done\r\n", IMAPCommand.uidSearch("DELETED")),
        ("* 99999999999 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\na1 OK done\r\n", IMAPCommand.select("INBOX")),
    ])
    func anUnreadableAnswerToTheCommandIsAnError(_ reply: String, command: IMAPCommand) async throws {
        let (client, server) = try await Self.imap([.init(reply)])
        defer { server.stop() }
        do {
            try await client.run(command)
            Issue.record("an unreadable answer to \(command) was passed over")
        } catch let error as IMAPError {
            guard case .protocolViolation = error else { Issue.record("\(error)"); return }
        }
        await client.close()
    }

    @Test func aStatusTextEndingInBracesEndsTheCommandAtOnce() async throws {
        let (client, server) = try await Self.imap([
            .init("a1 NO [TRYCREATE] Mailbox doesn't exist: Archive {2024}\r\n"),
            .init("a2 OK done\r\n"),
        ])
        defer { server.stop() }
        let started = ContinuousClock.now
        do {
            try await client.run(.select("Archive {2024}"), mailbox: "Archive {2024}")
            Issue.record("a NO was taken for an OK")
        } catch let IMAPError.commandFailed(_, _, status, code, text, _) {
            #expect(status == .no && code == .tryCreate && text == "Mailbox doesn't exist: Archive {2024}")
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        try await client.noop()
        await client.close()
    }
}
