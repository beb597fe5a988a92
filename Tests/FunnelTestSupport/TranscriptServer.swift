import NIOCore
import NIOPosix
import Synchronization

/// A loopback server that plays one side of a recorded conversation and checks the other: it
/// writes the server's lines up to the next client line (all in one write, so a line that follows
/// a reply arrives with it), reads a line and compares it with the transcript's, and so on. One
/// connection is served; `deviations()` waits for the client to hang up and says where it
/// strayed from the transcript.
public final class TranscriptServer: Sendable {
    public enum Line: Sendable, CustomStringConvertible {
        /// What the server writes, without CRLF.
        case server(String)
        /// What the server writes as it is, no CRLF added: a literal's bytes, or a line cut short.
        case serverBytes(String)
        /// The server closes the connection here, after writing what comes before.
        case serverCloses
        /// What the client must send, without CRLF.
        case client(String)
        /// What the client's line must begin with: for a line that carries a random nonce.
        case clientStarting(String)
        /// What the server writes, made from the client's last line: a SCRAM server-first must
        /// carry the client's nonce.
        case serverAnswering(@Sendable (String) -> String)

        public var description: String {
            switch self {
            case let .server(s): return "S: \(s)"
            case let .serverBytes(s): return "S: <\(s.utf8.count) bytes>"
            case .serverCloses: return "S: <closes the connection>"
            case let .client(c): return "C: \(c)"
            case let .clientStarting(c): return "C: \(c)…"
            case .serverAnswering: return "S: (made from the client's line)"
            }
        }
    }

    private let channel: Channel
    private let ended: EventLoopPromise<[String]>
    private let connection: Connection
    public var port: Int { channel.localAddress!.port! }
    public var endpointDescription: String { "127.0.0.1:\(port)" }

    private init(channel: Channel, ended: EventLoopPromise<[String]>, connection: Connection) {
        self.channel = channel
        self.ended = ended
        self.connection = connection
    }

    /// The connection being served, once a client has connected, and whether it was cut off.
    private final class Connection: Sendable {
        let channel = Mutex<Channel?>(nil)
        let cutOff = Mutex(false)
    }

    public static func start(_ transcript: [Line]) async throws -> TranscriptServer {
        let group = MultiThreadedEventLoopGroup.singleton
        let ended = group.next().makePromise(of: [String].self)
        let connection = Connection()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let first = connection.channel.withLock { served in
                        defer { served = served ?? child }
                        return served == nil
                    }
                    guard first else { return child.close(promise: nil) }
                    try child.pipeline.syncOperations.addHandler(Player(transcript: transcript, ended: ended))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TranscriptServer(channel: channel, ended: ended, connection: connection)
    }

    /// Waits until the client hangs up, then lists where what it sent differed from the transcript
    /// (empty when it kept to it). A client still connected after `limit` is cut off, and that is
    /// a deviation too: a client that stalls fails its test instead of hanging it.
    public func deviations(within limit: Duration = .seconds(30)) async throws -> [String] {
        let connection = self.connection, ended = self.ended
        let timer = ended.futureResult.eventLoop.scheduleTask(in: .nanoseconds(Int64(limit.components.seconds) * 1_000_000_000)) {
            connection.cutOff.withLock { $0 = true }
            if let c = connection.channel.withLock({ $0 }) {
                c.close(promise: nil)
            } else {
                ended.succeed([])
            }
        }
        var found = try await ended.futureResult.get()
        timer.cancel()
        if connection.cutOff.withLock({ $0 }) {
            found.append(connection.channel.withLock { $0 } == nil ? "no client connected within \(limit)" : "the client did not hang up within \(limit)")
        }
        return found
    }

    /// Stops listening and drops the connection, if one is still open.
    public func stop() {
        channel.close(promise: nil)
        connection.channel.withLock { $0 }?.close(promise: nil)
    }

    private final class Player: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var transcript: [Line]
        let ended: EventLoopPromise<[String]>
        var line: [UInt8] = []
        var lastClientLine = ""
        var deviations: [String] = []
        var closing = false

        init(transcript: [Line], ended: EventLoopPromise<[String]>) {
            self.transcript = transcript
            self.ended = ended
        }

        func channelActive(context: ChannelHandlerContext) {
            writeServerLines(context: context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !closing else { return }
            for byte in unwrapInboundIn(data).readableBytesView {
                line.append(byte)
                guard line.suffix(2) == [0x0D, 0x0A] else { continue }
                let sent = String(decoding: line.dropLast(2), as: UTF8.self)
                line = []
                lastClientLine = sent
                switch transcript.first {
                case let .client(expected)?:
                    transcript.removeFirst()
                    if sent != expected { deviations.append("expected C: \(expected), got C: \(sent)") }
                case let .clientStarting(prefix)?:
                    transcript.removeFirst()
                    if !sent.hasPrefix(prefix) { deviations.append("expected C: \(prefix)…, got C: \(sent)") }
                default:
                    deviations.append("unexpected C: \(sent)")
                }
                writeServerLines(context: context)
                if closing { return }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !line.isEmpty { deviations.append("an unended line C: \(String(decoding: line.prefix(60), as: UTF8.self))") }
            for l in transcript {
                switch l {
                case .client, .clientStarting: deviations.append("the client never sent \(l)")
                case .server, .serverBytes, .serverAnswering, .serverCloses: break
                }
            }
            ended.succeed(deviations)
        }

        private func writeServerLines(context: ChannelHandlerContext) {
            var out = ByteBuffer()
            loop: while let next = transcript.first {
                switch next {
                case let .server(s): out.writeString(s + "\r\n")
                case let .serverBytes(s): out.writeString(s)
                case let .serverAnswering(make): out.writeString(make(lastClientLine) + "\r\n")
                case .serverCloses: closing = true
                case .client, .clientStarting: break loop
                }
                transcript.removeFirst()
                if closing { break }
            }
            if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
            if closing { context.close(promise: nil) }
        }
    }
}
