import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The HTTP server for Prometheus and probes: `GET /metrics` answers the registry's text exposition,
/// `GET /ready` 200 or 503 for readiness probes (Kubernetes), anything else 404 (405 for a method
/// other than GET or HEAD).
///
/// On swift-nio (NIOPosix + NIOHTTP1): connections are served concurrently by one event-loop
/// thread, so a slow or idle client never holds up a scrape, and each connection has a deadline
/// for its whole request (not per read, so a client trickling a byte a second is cut off too).
/// swift-nio rather than Hummingbird: Hummingbird is built on the same swift-nio modules and adds
/// its router, service lifecycle, tracing and metrics packages on top, none of which two fixed
/// routes need; swift-nio alone is the smaller build and binary (docs/hardening.md gives both).
public final class MetricsServer: Sendable {
    /// The port actually bound (useful with port 0: any free one).
    public let port: Int
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let closed = Mutex(false)

    /// Listens on `host` (an IPv4 address; 0.0.0.0 for all interfaces) and `port`. `ready` answers
    /// `/ready` (a worker: connected to its coordinator). A connection gets `requestTimeout` to send
    /// its request; at most `maxConnections` are open at once (more are closed at once).
    public init(
        metrics: Metrics, host: String = "127.0.0.1", port: Int, requestTimeout: TimeAmount = .seconds(5), maxConnections: Int = 64,
        ready: @escaping @Sendable () -> Bool = { true }
    ) throws {
        guard (try? SocketAddress(ipAddress: host, port: 0)) != nil, !host.contains(":") else {
            throw ClusterError(.invalidArgument, "metrics: '\(host)' is not an IPv4 address")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = ConnectionCount(limit: maxConnections)
        do {
            channel = try ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 64)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard open.enter() else {
                            channel.close(promise: nil)
                            return
                        }
                        channel.closeFuture.whenComplete { _ in open.leave() }
                        // The whole request must arrive within the deadline, however it trickles in.
                        let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
                        channel.closeFuture.whenComplete { _ in deadline.cancel() }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics, ready: ready))
                    }
                }
                .childChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw ClusterError(.invalidArgument, "metrics: cannot listen on \(host):\(port): \(error)")
        }
        self.group = group
        self.port = channel.localAddress?.port ?? port
    }

    /// Stops listening and closes open connections. Idempotent.
    public func close() {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Connections open now, against a limit.
private final class ConnectionCount: Sendable {
    private let count = Mutex(0)
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func enter() -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}

/// Answers each request on a connection, then closes it.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: Metrics
    private let ready: @Sendable () -> Bool
    private var head: HTTPRequestHead?

    init(metrics: Metrics, ready: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break // requests here carry none worth reading
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let (status, type, body): (HTTPResponseStatus, String, String)
        if request.method != .GET && request.method != .HEAD {
            (status, type, body) = (.methodNotAllowed, "text/plain", "only GET\n")
        } else if path == "/metrics" {
            (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        } else if path == "/ready" {
            (status, type, body) = ready() ? (.ok, "text/plain", "ready\n") : (.serviceUnavailable, "text/plain", "not ready\n")
        } else {
            (status, type, body) = (.notFound, "text/plain", "try /metrics or /ready\n")
        }
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
