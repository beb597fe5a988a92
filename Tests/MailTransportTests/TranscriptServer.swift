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

        var description: String {
            switch self {
            case let .server(s): return "S: \(s)"
            case let .client(c): return "C: \(c)"
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
                if case let .client(expected)? = transcript.first {
                    transcript.removeFirst()
                    if sent != expected { deviations.append("expected C: \(expected), got C: \(sent)") }
                } else {
                    deviations.append("unexpected C: \(sent)")
                }
                writeServerLines(context: context)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !line.isEmpty { deviations.append("an unended line C: \(String(decoding: line.prefix(60), as: UTF8.self))") }
            for case let .client(expected) in transcript { deviations.append("the client never sent C: \(expected)") }
            ended.succeed(deviations)
        }

        private func writeServerLines(context: ChannelHandlerContext) {
            var out = ByteBuffer()
            while case let .server(s)? = transcript.first {
                transcript.removeFirst()
                out.writeString(s + "\r\n")
            }
            if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
        }
    }
}
