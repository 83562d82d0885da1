public import Logging
import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The optional plain-TCP metrics endpoint (`metrics.listen`): `GET /metrics` only, **unauthenticated**.
///
/// Anyone who can reach the address can read the metrics (runtime names, counts, timings); nothing else
/// is served (any other path is 404, any other method 405) and no request body is read. Bounded: at most
/// ``maximumConnections`` connections at once (the next is closed at once), an idle connection is closed
/// after ``idleTimeout``, each connection answers one request and closes, and request heads are limited by
/// NIO's HTTP parser.
public final class MetricsListener: Service, Sendable, CustomStringConvertible {
    public static let maximumConnections = 16
    static let idleTimeout: TimeAmount = .seconds(10)

    public var description: String { "MetricsListener(\(address))" }
    private let address: MetricsListenAddress
    private let group: MultiThreadedEventLoopGroup
    private let render: @Sendable () async -> [UInt8]
    private let logger: Logger
    private let open = Atomic<Int>(0)
    private let boundPort = Mutex<Int?>(nil)

    /// - Parameter render: the text format, scraped now.
    public init(
        address: MetricsListenAddress, group: MultiThreadedEventLoopGroup, logger: Logger,
        render: @escaping @Sendable () async -> [UInt8]
    ) {
        self.address = address
        self.group = group
        self.logger = logger
        self.render = render
    }

    /// The bound port once listening (the configured one, or the kernel's choice for port 0 in tests).
    public var port: Int? { boundPort.withLock { $0 } }

    public func run() async throws {
        let render = render
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                let count = open.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { [self] _ in _ = open.wrappingSubtract(1, ordering: .relaxed) }
                guard count <= Self.maximumConnections else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                }
            }
            .bind(host: address.host, port: address.port).get()
        boundPort.withLock { $0 = server.localAddress?.port }
        logger.notice(
            "metrics listening on TCP (unauthenticated)", metadata: ["address": "\(server.localAddress.map { "\($0)" } ?? "\(address)")"])
        try? await gracefulShutdown()
        try? await server.close()
    }
}

/// One metrics connection: answers its first request once it has fully arrived, then closes (one request
/// per connection: no pipelining to order, nothing kept between scrapes).
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () async -> [UInt8]
    private var head: HTTPRequestHead?
    private var answered = false

    init(render: @escaping @Sendable () async -> [UInt8]) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead): head = requestHead
        case .body: break  // ignored, never buffered
        case .end:
            guard let head, !answered else { return }
            answered = true
            respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            write(head, .notFound, "text/plain; charset=utf-8", Array("only /metrics is served here\n".utf8), context: context)
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            write(head, .methodNotAllowed, "text/plain; charset=utf-8", Array("GET only\n".utf8), context: context, allow: true)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let render = render
        context.eventLoop.makeFutureWithTask { await render() }.whenSuccess { bytes in
            let (handler, context) = bound.value
            handler.write(head, .ok, DaemonMetrics.contentType, bytes, context: context)
        }
    }

    private func write(
        _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ contentType: String, _ body: [UInt8],
        context: ChannelHandlerContext, allow: Bool = false
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if allow { headers.add(name: "Allow", value: "GET, HEAD") }
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        let channel = NIOLoopBound(context, eventLoop: context.eventLoop)
        done.futureResult.whenComplete { _ in channel.value.close(promise: nil) }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
