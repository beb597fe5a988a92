import NIOCore
import NIOPosix
import Synchronization

/// A loopback server that plays one side of a recorded conversation and checks the other: it
/// writes the server's lines up to the next client line (all in one write, so a line that follows
/// a reply arrives with it), reads a line and compares it with the transcript's, and so on. One
/// connection is served; `deviations()` waits for the client to hang up and says where it
/// strayed from the transcript.
final class TranscriptServer: Sendable {
    enum Line: Sendable, CustomStringConvertible {
        /// What the server writes, without CRLF.
        case server(String)
        /// What the client must send, without CRLF.
        case client(String)
        /// What the client's line must begin with: for a line that carries a random nonce.
        case clientStarting(String)
        /// What the server writes, made from the client's last line: a SCRAM server-first must
        /// carry the client's nonce.
        case serverAnswering(@Sendable (String) -> String)
        /// The server closes the connection (after what it wrote before).
        case serverCloses

        var description: String {
            switch self {
            case let .server(s): return "S: \(s)"
            case let .client(c): return "C: \(c)"
            case let .clientStarting(c): return "C: \(c)…"
            case .serverAnswering: return "S: (made from the client's line)"
            case .serverCloses: return "S: (closes the connection)"
            }
        }
    }

    private let channel: Channel
    private let ended: EventLoopFuture<[String]>
    var port: Int { channel.localAddress!.port! }
    var endpointDescription: String { "127.0.0.1:\(port)" }

    private init(channel: Channel, ended: EventLoopFuture<[String]>) {
        self.channel = channel
        self.ended = ended
    }

    static func start(_ transcript: [Line]) async throws -> TranscriptServer {
        let group = MultiThreadedEventLoopGroup.singleton
        let ended = group.next().makePromise(of: [String].self)
        let served = Mutex(false)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let first = served.withLock { served in
                        defer { served = true }
                        return !served
                    }
                    guard first else { return child.close(promise: nil) }
                    try child.pipeline.syncOperations.addHandler(Player(transcript: transcript, ended: ended))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TranscriptServer(channel: channel, ended: ended.futureResult)
    }

    /// Waits until the client hangs up, then lists where what it sent differed from the transcript
    /// (empty when it kept to it).
    func deviations() async throws -> [String] {
        try await ended.get()
    }

    func stop() {
        channel.close(promise: nil)
    }

    private final class Player: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var transcript: [Line]
        let ended: EventLoopPromise<[String]>
        var line: [UInt8] = []
        var lastClientLine = ""
        var deviations: [String] = []

        init(transcript: [Line], ended: EventLoopPromise<[String]>) {
            self.transcript = transcript
            self.ended = ended
        }

        func channelActive(context: ChannelHandlerContext) {
            writeServerLines(context: context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !line.isEmpty { deviations.append("an unended line C: \(String(decoding: line.prefix(60), as: UTF8.self))") }
            for l in transcript {
                switch l {
                case .client, .clientStarting: deviations.append("the client never sent \(l)")
                case .server, .serverAnswering, .serverCloses: break
                }
            }
            ended.succeed(deviations)
        }

        private func writeServerLines(context: ChannelHandlerContext) {
            var out = ByteBuffer()
            var hangUp = false
            lines: while let next = transcript.first {
                switch next {
                case let .server(s): out.writeString(s + "\r\n")
                case let .serverAnswering(make): out.writeString(make(lastClientLine) + "\r\n")
                case .serverCloses: hangUp = true
                case .client, .clientStarting: break lines
                }
                transcript.removeFirst()
                if hangUp { break }
            }
            if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
            if hangUp { context.close(promise: nil) }
        }
    }
}
