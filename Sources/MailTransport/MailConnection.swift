import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A TCP connection to a mail server, with implicit TLS or a later STARTTLS upgrade, read by the
/// client on demand: the channel reads only when asked (autoRead off), so a fast server cannot
/// fill memory while the client is busy elsewhere. A read that waits longer than the endpoint's
/// read timeout fails; an idle connection that nobody reads is not an error.
public final class MailConnection: Sendable {
    public let endpoint: ServerEndpoint
    let channel: Channel
    private let bridge: NIOLoopBound<ReadBridge>

    private init(endpoint: ServerEndpoint, channel: Channel, bridge: NIOLoopBound<ReadBridge>) {
        self.endpoint = endpoint
        self.channel = channel
        self.bridge = bridge
    }

    /// A connection nobody holds any more is closed, as a process's sockets are when it ends.
    deinit {
        channel.close(promise: nil)
    }

    /// Connects, and for implicit TLS completes the handshake before returning.
    public static func connect(to endpoint: ServerEndpoint,
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MailConnection {
        let sslContext: NIOSSLContext? = endpoint.tls == .implicit ? try await TLSContexts.context(for: endpoint) : nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(endpoint.connectTimeout.components.seconds) * 1_000_000_000))
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let bridge = ReadBridge(endpoint: endpoint)
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try tlsHandler(sslContext, endpoint))
                    }
                    try channel.pipeline.syncOperations.addHandler(bridge)
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw TransportError.connectFailed(endpoint: endpoint.description, reason: describe(error))
        }
        let bridge = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ReadBridge.self), eventLoop: channel.eventLoop)
        }.get()
        return MailConnection(endpoint: endpoint, channel: channel, bridge: bridge)
    }

    /// The next bytes from the server, or nil at the end of the stream. Waiting longer than the
    /// endpoint's read timeout closes the connection with `TransportError.timedOut`.
    public func read() async throws -> ByteBuffer? {
        let bridge = self.bridge
        let timeout = TimeAmount.nanoseconds(Int64(endpoint.readTimeout.components.seconds) * 1_000_000_000)
        return try await channel.eventLoop.flatSubmit {
            bridge.value.read(timeout: timeout, fatal: true)
        }.get()
    }

    /// Like `read()`, but a wait longer than `timeout` is not an error: it returns an empty buffer
    /// and the connection stays open (for IDLE, where silence is normal).
    public func read(waitingAtMost timeout: Duration) async throws -> ByteBuffer? {
        let bridge = self.bridge
        let amount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                            + timeout.components.attoseconds / 1_000_000_000)
        return try await channel.eventLoop.flatSubmit {
            bridge.value.read(timeout: amount, fatal: false)
        }.get()
    }

    /// Hands every read to `consume` on the connection's event loop as it arrives, reading on
    /// until `consume` returns true; for a long response (a UID FETCH of message bodies) whose
    /// bytes are parsed and spooled where they were decrypted, without a trip from the event loop
    /// to a task and back for every read. The caller must not touch what `consume` uses until this
    /// returns. A read that waits longer than the endpoint's read timeout fails as `read()` does;
    /// an error thrown by `consume` ends the wait and is rethrown.
    public func consumeReads(_ consume: @escaping (inout ByteBuffer) throws -> Bool) async throws {
        let bridge = self.bridge
        let timeout = TimeAmount.nanoseconds(Int64(endpoint.readTimeout.components.seconds) * 1_000_000_000)
        let body = UncheckedConsumer(consume)
        try await channel.eventLoop.flatSubmit {
            bridge.value.consume(timeout: timeout, body.consume)
        }.get()
    }

    public func write(_ bytes: ByteBuffer) async throws {
        do {
            try await channel.writeAndFlush(bytes).get()
        } catch {
            throw TransportError.closedByPeer(endpoint: endpoint.description)
        }
    }

    /// Writes without waiting (from a `consumeReads` consumer, on the event loop): a write that
    /// fails closes the connection, and the read waiting for the reply fails.
    public func writeNow(_ bytes: ByteBuffer) {
        channel.writeAndFlush(bytes, promise: nil)
    }

    /// The channel's allocator, for callers that gather bytes before writing them.
    public var allocator: ByteBufferAllocator { channel.allocator }

    public func write(_ bytes: [UInt8]) async throws {
        try await write(channel.allocator.buffer(bytes: bytes))
    }

    /// Whether bytes arrived that nobody has read yet.
    public func hasBufferedBytes() async throws -> Bool {
        let bridge = self.bridge
        return try await channel.eventLoop.submit { bridge.value.hasBuffered }.get()
    }

    /// Starts TLS on the live connection (after the server's go-ahead to STARTTLS/STLS) and waits
    /// for the handshake. Refuses when the server already sent more bytes: those would have been
    /// injected in plain text.
    public func startTLS() async throws {
        if try await hasBufferedBytes() {
            throw TransportError.plaintextAfterStartTLS(endpoint: endpoint.description)
        }
        let context = try await TLSContexts.context(for: endpoint)
        let endpoint = self.endpoint
        let channel = self.channel
        let bridge = self.bridge
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(context, endpoint), position: .first)
                return bridge.value.waitForHandshake(timeout: .seconds(Int64(endpoint.readTimeout.components.seconds)))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }

    /// The TLS handler for `endpoint`: NIOSSL verifies the chain and the name; a server reached by
    /// name must also have that name among its certificate's DNS names (`ServerIdentity`).
    static func tlsHandler(_ context: NIOSSLContext, _ endpoint: ServerEndpoint) throws -> NIOSSLClientHandler {
        guard !endpoint.isIPAddress else { return try NIOSSLClientHandler(context: context, serverHostname: nil) }
        let host = endpoint.host, described = endpoint.description
        return try NIOSSLClientHandler._makeSSLClientHandler(context: context, serverHostname: host) { certificate, channel in
            var dnsNames: [String] = [], addresses: [String] = []
            for name in certificate._subjectAlternativeNames() {
                switch name.nameType {
                case .dnsName: dnsNames.append(String(decoding: Array(name.contents), as: UTF8.self))
                case .ipAddress:
                    let packed = channel.allocator.buffer(bytes: Array(name.contents))
                    addresses.append((try? SocketAddress(packedIPAddress: packed, port: 0))?.ipAddress ?? "an IP address")
                default: break
                }
            }
            // Without subjectAltName, NIOSSL compared the common name.
            guard !dnsNames.isEmpty || !addresses.isEmpty, !ServerIdentity.names(host, in: dnsNames) else {
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            return channel.eventLoop.makeFailedFuture(TransportError.certificateForAnotherName(
                endpoint: described, reason: ServerIdentity.mismatch(host, dnsNames: dnsNames, addresses: addresses)))
        }
    }

    /// Closes at once, without waiting: for a cancellation handler (a pending read then fails).
    public func closeNow() {
        channel.close(promise: nil)
    }

    /// Closes the connection (idempotent).
    public func close() async {
        try? await channel.close().get()
    }

    static func describe(_ error: Error) -> String {
        let text = "\(error)"
        // NIO words every failed connect as "connection reset (error set)" before the errno's text.
        if text.contains("Connection refused") || text.contains("connection refused") { return "connection refused" }
        if text.contains("connection reset") { return "connection reset" }
        if text.contains("connectTimeout") || text.contains("timeout") { return "timed out" }
        return text
    }
}

/// A consumer handed to the event loop while its owner waits for it to finish: it is only ever
/// called there, one call at a time, and the owner does not touch its state in the meantime.
private struct UncheckedConsumer: @unchecked Sendable {
    let consume: (inout ByteBuffer) throws -> Bool
    init(_ consume: @escaping (inout ByteBuffer) throws -> Bool) { self.consume = consume }
}

/// Lives in the pipeline; hands inbound bytes to whoever asked, reading only on request.
final class ReadBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let endpoint: ServerEndpoint
    private var buffered: ByteBuffer?
    private var waiting: EventLoopPromise<ByteBuffer?>?
    private var timeoutTask: Scheduled<Void>?
    private var failure: Error?
    private var closed = false
    private var context: ChannelHandlerContext?
    private var handshakePromise: EventLoopPromise<Void>?
    /// While a consumer is set (`consume`), every read goes to it and the channel reads on.
    private var consumer: ((inout ByteBuffer) throws -> Bool)?
    private var consumed: EventLoopPromise<Void>?
    /// Whether bytes came since the consumer's timer was last checked.
    private var progressed = false
    /// Whether the consumer is running: the connection ending meanwhile is reported after it
    /// returns, so an error it throws is the one its caller sees.
    private var feeding = false

    init(endpoint: ServerEndpoint) {
        self.endpoint = endpoint
    }

    var hasBuffered: Bool { (buffered?.readableBytes ?? 0) > 0 }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func read(timeout: TimeAmount, fatal: Bool) -> EventLoopFuture<ByteBuffer?> {
        guard let context else { return endpointClosed() }
        if var b = buffered, b.readableBytes > 0 {
            buffered = nil
            return context.eventLoop.makeSucceededFuture(b.readSlice(length: b.readableBytes))
        }
        if let failure { return context.eventLoop.makeFailedFuture(failure) }
        if closed { return context.eventLoop.makeSucceededFuture(nil) }
        precondition(waiting == nil, "one read at a time")
        let promise = context.eventLoop.makePromise(of: ByteBuffer?.self)
        waiting = promise
        timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self else { return }
            if !fatal {
                // Not an error: hand back nothing; bytes that arrive later wait in `buffered`.
                let waiter = self.waiting
                self.waiting = nil
                waiter?.succeed(ByteBuffer())
                return
            }
            let seconds = timeout.nanoseconds / 1_000_000_000
            self.fail(TransportError.timedOut(endpoint: self.endpoint.description, waited: "\(seconds) s"))
            self.context?.close(promise: nil)
        }
        context.read()
        return promise.futureResult
    }

    func consume(timeout: TimeAmount, _ body: @escaping (inout ByteBuffer) throws -> Bool) -> EventLoopFuture<Void> {
        guard let context else { fatalError("consume before the handler was added") }
        precondition(waiting == nil && consumer == nil, "one read at a time")
        if var b = buffered, b.readableBytes > 0 {
            buffered = nil
            do {
                if try body(&b) { return context.eventLoop.makeSucceededVoidFuture() }
            } catch {
                return context.eventLoop.makeFailedFuture(error)
            }
        }
        if let failure { return context.eventLoop.makeFailedFuture(failure) }
        if closed { return context.eventLoop.makeFailedFuture(TransportError.closedByPeer(endpoint: endpoint.description)) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        consumer = body
        consumed = promise
        progressed = false
        scheduleConsumerTimeout(timeout, context: context)
        context.read()
        return promise.futureResult
    }

    /// Checks once a timeout that bytes came; silence for a whole timeout fails the consumer.
    private func scheduleConsumerTimeout(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.consumer != nil else { return }
            if self.progressed {
                self.progressed = false
                self.scheduleConsumerTimeout(timeout, context: context)
                return
            }
            let seconds = timeout.nanoseconds / 1_000_000_000
            self.fail(TransportError.timedOut(endpoint: self.endpoint.description, waited: "\(seconds) s"))
            context.close(promise: nil)
        }
    }

    /// The consumer's verdict on `bytes`: nil to read on. Its closure is let go of before the
    /// caller completes the wait, so the owner never finds it still held.
    private func feedConsumer(_ bytes: inout ByteBuffer) -> Result<Void, Error>? {
        do {
            return try consumer!(&bytes) ? .success(()) : nil
        } catch {
            return .failure(error)
        }
    }

    private func finishConsuming(_ result: Result<Void, Error>) {
        let promise = consumed
        consumer = nil
        consumed = nil
        timeoutTask?.cancel()
        promise?.completeWith(result)
    }

    private func endpointClosed() -> EventLoopFuture<ByteBuffer?> {
        fatalError("read before the handler was added")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if consumer != nil {
            progressed = true
            feeding = true
            let result = feedConsumer(&bytes)
            feeding = false
            if let result {
                finishConsuming(result)
            } else if failure != nil || closed {
                // The connection ended while the consumer ran (it closed it, say): its own error
                // has gone to the caller already if it threw one.
                finishConsuming(.failure(failure ?? TransportError.closedByPeer(endpoint: endpoint.description)))
            }
        } else if let promise = waiting {
            waiting = nil
            timeoutTask?.cancel()
            if var b = buffered { b.writeBuffer(&bytes); bytes = b; buffered = nil }
            promise.succeed(bytes)
        } else if buffered != nil {
            buffered!.writeBuffer(&bytes)
        } else {
            buffered = bytes
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A read that brought nothing for us (TLS handshake records) must not strand the waiter.
        if waiting != nil || consumer != nil { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakePromise?.succeed(())
            handshakePromise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func waitForHandshake(timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context else { fatalError("handler not added") }
        let promise = context.eventLoop.makePromise(of: Void.self)
        handshakePromise = promise
        context.read()
        let task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.handshakePromise?.fail(TransportError.timedOut(endpoint: self?.endpoint.description ?? "", waited: "the TLS handshake"))
            self?.handshakePromise = nil
        }
        promise.futureResult.whenComplete { _ in task.cancel() }
        return promise.futureResult
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(Self.classify(error, endpoint: endpoint))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timeoutTask?.cancel()
        if let promise = waiting {
            waiting = nil
            promise.succeed(nil)
        }
        if consumer != nil && !feeding {
            finishConsuming(.failure(failure ?? TransportError.closedByPeer(endpoint: endpoint.description)))
        }
        handshakePromise?.fail(failure ?? TransportError.closedByPeer(endpoint: endpoint.description))
        handshakePromise = nil
        context.fireChannelInactive()
    }

    private func fail(_ error: Error) {
        if failure == nil { failure = error }
        timeoutTask?.cancel()
        if let promise = waiting {
            waiting = nil
            promise.fail(failure!)
        }
        if consumer != nil && !feeding { finishConsuming(.failure(failure!)) }
        handshakePromise?.fail(failure!)
        handshakePromise = nil
    }

    static func classify(_ error: Error, endpoint: ServerEndpoint) -> Error {
        if error is TransportError { return error }
        let text = "\(error)"
        if let e = error as? NIOSSLError {
            switch e {
            case .handshakeFailed:
                // What a plain-text server's greeting reads as, taken for a TLS record.
                if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG")
                    || text.contains("HTTP_REQUEST") || text.contains("UNKNOWN_PROTOCOL") {
                    return TransportError.notTLS(endpoint: endpoint.description, hungUp: false)
                }
                if text.contains("EOF during handshake") {
                    return TransportError.notTLS(endpoint: endpoint.description, hungUp: true)
                }
                if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate") {
                    return TransportError.certificateRejected(endpoint: endpoint.description, reason: "certificate verify failed")
                }
                return TransportError.tlsFailed(endpoint: endpoint.description, reason: text)
            case .unableToValidateCertificate:
                return TransportError.certificateForAnotherName(endpoint: endpoint.description, reason: "it does not name \(endpoint.host)")
            default:
                return TransportError.tlsFailed(endpoint: endpoint.description, reason: text)
            }
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return TransportError.certificateRejected(endpoint: endpoint.description, reason: "certificate verify failed")
        }
        return TransportError.closedByPeer(endpoint: endpoint.description)
    }
}

extension ByteBuffer {
    /// Adds what a read brought to the bytes a client has not parsed yet. When nothing is left
    /// over (nearly always: a parser takes a message's bytes as slices), the read's buffer is
    /// taken as it is, without copying it. Otherwise (a line or literal cut by the read) the
    /// bytes are joined, after dropping what was parsed, so a long run of reads that each end
    /// mid-line does not grow the buffer.
    mutating func absorb(_ more: inout ByteBuffer) {
        if readableBytes == 0 {
            self = more
        } else {
            if readerIndex >= 64 << 10 { discardReadBytes() }
            writeBuffer(&more)
        }
    }

    /// Lets go of a buffer whose bytes are all parsed, before the next read: NIOSSL decrypts
    /// into the same storage again, and would have to allocate a fresh one while we held it.
    mutating func releaseIfParsed() {
        if readableBytes == 0 { self = ByteBuffer() }
    }
}
