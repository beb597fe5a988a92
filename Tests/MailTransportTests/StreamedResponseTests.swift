import Foundation
import IMAPCore
import Logging
@testable import MailTransport
import NIOCore
import NIOPosix
import Testing

/// Long responses (UID FETCH of bodies, pipelined RETR) are read and parsed on the connection's
/// event loop (`MailConnection.consumeReads`). These tests play recorded server transcripts from a
/// loopback socket, answering each command line with the next scripted reply, and check what the
/// clients make of replies cut anywhere, of what follows the end of a response, and of a server
/// that hangs up, stalls or breaks the protocol halfway through.
@Suite struct StreamedResponseTests {
    static let big = String(repeating: "0123456789abcdefghijklmnopqrstuvwxyz!\r\n", count: 8_000)  // 312,000 bytes

    static func fetchReply(_ tag: String, bodies: [String]) -> String {
        var r = ""
        for (i, b) in bodies.enumerated() {
            r += "* \(i + 1) FETCH (UID \(100 + i) BODY[] {\(b.utf8.count)}\r\n\(b))\r\n"
        }
        return r + "\(tag) OK done\r\n"
    }

    static func imap(_ steps: [ScriptedServer.Step], readTimeout: Duration = .seconds(30)) async throws -> (IMAPClient, ScriptedServer) {
        let server = try await ScriptedServer.start(greeting: "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n", steps: steps)
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: server.port, tls: .none, readTimeout: readTimeout)
        return (try await IMAPClient.connect(to: endpoint, logger: Logger(label: "test")), server)
    }

    /// Bodies gathered from a UID FETCH, by UID.
    static func fetchBodies(_ client: IMAPClient) async throws -> [UInt32: String] {
        var bodies: [UInt32: String] = [:]
        var uid: UInt32 = 0
        var body = ""
        try await client.uidFetch(UIDSet([1...UInt32.max]), items: ["UID", "BODY.PEEK[]"]) { event in
            switch event {
            case .fetchBegan: body = ""
            case let .fetchAttribute(.uid(u)): uid = u
            case let .fetchBodyBytes(b): body += String(buffer: b)
            case .fetchEnded: bodies[uid] = body
            default: break
            }
        }
        return bodies
    }

    @Test func aFetchCutIntoSmallPiecesArrivesWholeAndWhatFollowsItIsKept() async throws {
        let bodies = ["Subject: one\r\n\r\nshort\r\n", Self.big, "Subject: three\r\n\r\n{5}\r\n) not the end\r\n"]
        // The tagged OK and an EXISTS that follows it come in one piece: the EXISTS is read with
        // the FETCH and must still be seen by the next command.
        let (client, server) = try await Self.imap([
            .init(Self.fetchReply("a1", bodies: bodies) + "* 7 EXISTS\r\n", chunk: 997),
            .init("a2 OK noop done\r\n"),
        ])
        defer { server.stop() }
        let got = try await Self.fetchBodies(client)
        #expect(got == [100: bodies[0], 101: bodies[1], 102: bodies[2]])
        try await client.noop()
        #expect(client.lastExists == 7)
        await client.close()
    }

    @Test func aServerHangingUpInsideABodyFailsTheFetch() async throws {
        let reply = Self.fetchReply("a1", bodies: [Self.big])
        let (client, server) = try await Self.imap([.init(String(reply.prefix(100_000)), then: .close)])
        defer { server.stop() }
        await #expect(throws: TransportError.closedByPeer(endpoint: client.endpoint.description)) {
            _ = try await Self.fetchBodies(client)
        }
    }

    @Test func aServerFallingSilentInsideABodyTimesOut() async throws {
        let reply = Self.fetchReply("a1", bodies: [Self.big])
        let (client, server) = try await Self.imap([.init(String(reply.prefix(100_000)))], readTimeout: .seconds(1))
        defer { server.stop() }
        let started = ContinuousClock.now
        await #expect(throws: TransportError.timedOut(endpoint: client.endpoint.description, waited: "1 s")) {
            _ = try await Self.fetchBodies(client)
        }
        // Silence is noticed within two timeouts (bytes came during the first).
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func aBrokenReplyInsideAFetchIsAProtocolErrorAndClosesTheConnection() async throws {
        let (client, server) = try await Self.imap([
            .init("* 1 FETCH (UID 100 BODY[] {5}\r\nhello)\r\n* 2 FETCH (UID 101 BODY[] {x}\r\n", chunk: 11),
            .init("a2 OK noop done\r\n"),
        ])
        defer { server.stop() }
        do {
            _ = try await Self.fetchBodies(client)
            Issue.record("a broken FETCH reply was accepted")
        } catch let error as IMAPError {
            guard case .protocolViolation = error else { Issue.record("\(error)"); return }
        }
        // Nothing more is read from a connection whose stream cannot be trusted.
        await #expect(throws: (any Error).self) { try await client.noop() }
    }

    @Test func pipelinedRetrievesAreReadAsTheyArriveAndARefusalIsThatMessagesAlone() async throws {
        let one = "Subject: a\r\n\r\n.dot-stuffed\r\n"
        let server = try await ScriptedServer.start(greeting: "+OK ready\r\n", steps: [
            .init("+OK\r\nUSER\r\nPIPELINING\r\n.\r\n"),     // CAPA
            .init("+OK\r\n"),                                // USER
            .init("+OK logged in\r\n"),                      // PASS
            .init("+OK\r\nSubject: a\r\n\r\n..dot-stuffed\r\n.\r\n", chunk: 3),    // RETR 1
            .init("-ERR [IN-USE] gone\r\n"),                 // RETR 2
            .init("+OK\r\n" + Self.big + ".\r\n", chunk: 4093),                     // RETR 3
            .init("+OK\r\nlast\r\n.\r\n"),                   // RETR 4
        ])
        defer { server.stop() }
        let endpoint = ServerEndpoint(host: "127.0.0.1", port: server.port, tls: .none)
        let client = try await POP3Client.open(endpoint, credentials: Credentials(user: "u", password: "p"), logger: Logger(label: "test"))
        var seen: [String] = []
        var body = ""
        try await client.retrieve([1, 2, 3, 4], window: 2, begin: { n in seen.append("begin \(n)"); body = "" },
                                  onBytes: { body += String(buffer: $0) },
                                  end: { n, refusal in
                                      seen.append(refusal == nil ? "end \(n) \(body.utf8.count)" : "refused \(n)")
                                      if n == 1 { #expect(body == one) }
                                      if n == 3 { #expect(body == Self.big) }
                                  })
        #expect(seen == ["begin 1", "end 1 \(one.utf8.count)", "begin 2", "refused 2", "begin 3", "end 3 \(Self.big.utf8.count)", "begin 4", "end 4 6"])
        await client.close()
    }
}

/// A loopback server that greets, then answers each command line it reads with the next scripted
/// reply, written in pieces of `chunk` bytes (one write each), so replies reach the client cut at
/// arbitrary points. After a step it can hang up, or fall silent for good.
final class ScriptedServer: Sendable {
    struct Step: Sendable {
        enum After: Sendable { case goOn, close }
        var reply: String
        var chunk: Int
        var then: After
        init(_ reply: String, chunk: Int = 1 << 20, then: After = .goOn) {
            self.reply = reply
            self.chunk = chunk
            self.then = then
        }
    }

    let channel: Channel
    var port: Int { channel.localAddress!.port! }

    private init(channel: Channel) { self.channel = channel }

    static func start(greeting: String, steps: [Step]) async throws -> ScriptedServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(Handler(greeting: greeting, steps: steps))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(channel: channel)
    }

    func stop() {
        channel.close(promise: nil)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let greeting: String
        var steps: [Step]
        var line: [UInt8] = []

        init(greeting: String, steps: [Step]) {
            self.greeting = greeting
            self.steps = steps
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            for byte in unwrapInboundIn(data).readableBytesView {
                line.append(byte)
                guard byte == UInt8(ascii: "\n") else { continue }
                line = []
                guard !steps.isEmpty else { continue }
                let step = steps.removeFirst()
                var reply = ByteBuffer(string: step.reply)
                while let piece = reply.readSlice(length: min(step.chunk, reply.readableBytes)), piece.readableBytes > 0 {
                    context.writeAndFlush(wrapOutboundOut(piece), promise: nil)
                }
                if step.then == .close {
                    steps = []
                    context.close(promise: nil)
                }
            }
        }
    }
}
