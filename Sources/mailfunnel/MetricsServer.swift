import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves Prometheus `/metrics` and `/healthz` on `metrics_listen` until shutdown.
struct MetricsServer: Service {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    /// `127.0.0.1:9120` or `[::1]:9120`.
    static func parse(_ listen: String) -> (String, Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    func run() async throws {
        let registry = self.registry
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
                    }
                }
            }
            .bind(host: host, port: port).get()
        logger.notice("metrics on http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics")
        try? await gracefulShutdown()
        try await channel.close()
    }
}

/// GET /metrics: the registry in Prometheus text format; GET /healthz: `ok`; anything else: 404.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    private var path = ""

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head): path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        case .body: break
        case .end:
            let (status, body, type): (HTTPResponseStatus, String, String) = switch path {
            case "/metrics": (.ok, registry.emitToString(), "text/plain; version=0.0.4; charset=utf-8")
            case "/healthz": (.ok, "ok\n", "text/plain")
            default: (.notFound, "not found\n", "text/plain")
            }
            var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.utf8.count)), ("Connection", "close")])
            headers.add(name: "Cache-Control", value: "no-store")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}
