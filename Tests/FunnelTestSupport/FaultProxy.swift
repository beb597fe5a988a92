import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of a real server that behaves like a bad link: each
/// connection is cut after a random number of bytes in either direction (or, now and then, the
/// side that would have read more is fed a few random bytes first, or the connection stalls:
/// it stays open and carries nothing more), as a mobile or NAT path drops connections every few
/// megabytes.
/// TLS passes through untouched until the fault, so the client sees what it would see on such a
/// link. Seeded, so a failing run can be replayed.
public final class FaultProxy: Sendable {
    public struct Faults: Sendable {
        /// Each connection is cut after this many bytes (both ways together), drawn anew per connection.
        public var cutAfter: ClosedRange<Int>
        /// One connection in this many gets random bytes instead of the rest (0: never).
        public var garbageEvery: Int
        /// One connection in this many stalls instead of being cut (0: never): only the client's
        /// timeout ends it.
        public var stallEvery: Int

        public init(cutAfter: ClosedRange<Int>, garbageEvery: Int = 0, stallEvery: Int = 0) {
            self.cutAfter = cutAfter
            self.garbageEvery = garbageEvery
            self.stallEvery = stallEvery
        }
    }

    private let channel: Channel
    private let state: Mutex<(rng: SplitMix, connections: Int, cuts: Int, stalls: Int)>
    public var port: Int { channel.localAddress!.port! }
    /// How many connections were made, how many of them were cut, and how many of those stalled.
    public var counts: (connections: Int, cuts: Int, stalls: Int) { state.withLock { ($0.connections, $0.cuts, $0.stalls) } }

    private init(channel: Channel, seed: UInt64) {
        self.channel = channel
        self.state = Mutex((SplitMix(seed: seed), 0, 0, 0))
    }

    /// Listens on 127.0.0.1 (an ephemeral port) and forwards to `127.0.0.1:targetPort`.
    public static func start(to targetPort: Int, faults: Faults, seed: UInt64) async throws -> FaultProxy {
        let group = MultiThreadedEventLoopGroup.singleton
        let proxy = Box()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                guard let p = proxy.value else { return inbound.close() }
                let (budget, garbage, stall) = p.state.withLock { s -> (Int, Bool, Bool) in
                    s.connections += 1
                    let span = UInt64(faults.cutAfter.upperBound - faults.cutAfter.lowerBound + 1)
                    let budget = faults.cutAfter.lowerBound + Int(s.rng.next() % span)
                    let garbage = faults.garbageEvery > 0 && s.rng.next() % UInt64(faults.garbageEvery) == 0
                    let stall = !garbage && faults.stallEvery > 0 && s.rng.next() % UInt64(faults.stallEvery) == 0
                    return (budget, garbage, stall)
                }
                return ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMap { outbound in
                        let left = Budget(budget, stall: stall)
                        let onCut: @Sendable () -> Void = {
                            p.state.withLock {
                                $0.cuts += 1
                                if stall { $0.stalls += 1 }
                            }
                        }
                        let toServer = Pipe(partner: outbound, budget: left, garbage: garbage, onCut: onCut)
                        let toClient = Pipe(partner: inbound, budget: left, garbage: garbage, onCut: onCut)
                        do {
                            try inbound.pipeline.syncOperations.addHandler(toServer)
                            try outbound.pipeline.syncOperations.addHandler(toClient)
                        } catch {
                            return inbound.eventLoop.makeFailedFuture(error)
                        }
                        return inbound.eventLoop.makeSucceededVoidFuture()
                    }
                    .flatMapError { _ in inbound.close() }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let p = FaultProxy(channel: channel, seed: seed)
        proxy.value = p
        return p
    }

    public func stop() {
        channel.close(promise: nil)
    }

    private final class Box: @unchecked Sendable {
        var value: FaultProxy?
    }

    /// The bytes a connection may still carry, both ways; used on its one event loop only.
    private final class Budget: @unchecked Sendable {
        var left: Int
        var cut = false
        let stall: Bool
        init(_ left: Int, stall: Bool) {
            self.left = left
            self.stall = stall
        }
    }

    /// Forwards what one side reads to the other while the connection's budget lasts; then (with
    /// `garbage`, after a few random bytes) closes both, or (stalling) drops all that follows and
    /// leaves both open until a side hangs up.
    private final class Pipe: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let partner: Channel
        let budget: Budget
        let garbage: Bool
        let onCut: @Sendable () -> Void

        init(partner: Channel, budget: Budget, garbage: Bool, onCut: @escaping @Sendable () -> Void) {
            self.partner = partner
            self.budget = budget
            self.garbage = garbage
            self.onCut = onCut
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !budget.cut else { return }
            var bytes = unwrapInboundIn(data)
            if bytes.readableBytes >= budget.left {
                var head = bytes.readSlice(length: budget.left)!
                if garbage {
                    head.writeBytes((0..<64).map { _ in UInt8.random(in: 0...255) })
                }
                budget.cut = true
                onCut()
                if budget.stall {
                    partner.writeAndFlush(head, promise: nil)
                    return
                }
                let context = NIOLoopBound(context, eventLoop: context.eventLoop)
                partner.writeAndFlush(head).whenComplete { _ in
                    self.partner.close(promise: nil)
                    context.value.close(promise: nil)
                }
                return
            }
            budget.left -= bytes.readableBytes
            partner.writeAndFlush(bytes, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {}

        func channelInactive(context: ChannelHandlerContext) {
            partner.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
            partner.close(promise: nil)
        }
    }
}
