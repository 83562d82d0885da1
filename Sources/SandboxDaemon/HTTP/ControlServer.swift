#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import NIOPosix
import RuntimeHostProtocol
public import ServiceLifecycle

/// The control API server: HTTP/1.1 over the bound ``ControlSocket``, as a lifecycle `Service`.
///
/// Every accepted connection is checked with `SO_PEERCRED` first (refused peers get 403 and are closed)
/// and counted against the connection caps (503): all together, per peer uid, with the last slots kept
/// for root; events streams have their own caps (``ConnectionTracker``). Bodies over the limit get 413 — by `Content-Length`
/// before reading, or while reading a chunked body. On graceful shutdown it stops accepting, ends every
/// events stream, lets in-flight requests finish (bounded), then returns.
public final class ControlServer: Service, Sendable, CustomStringConvertible {
    public var description: String { "ControlServer(\(socket.path))" }
    /// Limits and policies of the server.
    public struct Settings: Sendable {
        public var limits: APILimits
        public var peerPolicy: PeerPolicy
        /// Attached hosts (`GET /v1/runtimes/{name}/attach`).
        public var attach: AttachLimits

        public init(limits: APILimits, peerPolicy: PeerPolicy, attach: AttachLimits = AttachLimits()) {
            self.limits = limits
            self.peerPolicy = peerPolicy
            self.attach = attach
        }
    }

    private let socket: ControlSocket
    private let handler: ConnectionHandler
    private let events: EventHub
    private let settings: Settings
    private let group: MultiThreadedEventLoopGroup
    private let tracker: ConnectionTracker
    private let registry: Registry
    private let logger: Logger
    private let onListening: @Sendable () -> Void
    private let onStopAccepting: @Sendable () async -> Void

    /// - Parameters:
    ///   - onListening: called once the socket accepts connections (the reporter's readiness hook).
    ///   - onStopAccepting: awaited after the listener closed and before events streams end, so streams
    ///     still see the runtimes stopping (the daemon stops its runtimes here).
    public init(
        socket: ControlSocket, router: Router, events: EventHub, settings: Settings,
        group: MultiThreadedEventLoopGroup, logger: Logger, onListening: @escaping @Sendable () -> Void = {},
        onStopAccepting: @escaping @Sendable () async -> Void = {}
    ) {
        self.socket = socket
        self.events = events
        self.settings = settings
        self.group = group
        let tracker = ConnectionTracker(limits: settings.limits, isPrivileged: PeerPolicy.isPrivileged)
        self.tracker = tracker
        self.registry = router.api.registry
        self.handler = ConnectionHandler(
            router: router, events: events, limits: settings.limits, tracker: tracker, logger: logger
        )
        self.logger = logger
        self.onListening = onListening
        self.onStopAccepting = onStopAccepting
    }

    public func run() async throws {
        let settings = settings
        let tracker = tracker
        let registry = registry
        let logger = logger
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .bind(socket.descriptor) { channel in
                Self.initialize(channel, settings: settings, tracker: tracker, registry: registry, logger: logger)
            }
        logger.info("control API listening", metadata: ["socket": "\(socket.path)"])
        onListening()

        await withGracefulShutdownHandler {
            // Connections run as their own tasks, tracked by `tracker`: shutdown must never wait on a
            // request that hangs (a runtime that does not stop), only on the connections it can close.
            // Accepting, connection I/O and the cheap routes run on the control loop, so the API answers
            // while a burst of provisions keeps the cooperative pool busy (`Router.Route.onLoop`).
            let executor = EventLoopTaskExecutor(server.channel.eventLoop)
            do {
                try await withTaskExecutorPreference(executor) {
                  try await server.executeThenClose { inbound in
                    for try await outcome in inbound {
                        Task(executorPreference: executor) { [handler, logger] in
                            // Settled after the first request: an upgrade to RHP, or plain HTTP.
                            do {
                                switch try await outcome.get() {
                                case .http(let connection): await handler.serve(connection)
                                case .attached(let session): await session.run()
                                }
                            } catch {
                                logger.debug("control connection ended before its first request", metadata: ["error": "\(error)"])
                            }
                        }
                    }
                  }
                }
            } catch {
                logger.debug("listener closed", metadata: ["error": "\(error)"])
            }
            // Listener gone (shutdown): idle connections close now, requests in flight finish; runtimes
            // stop while event streams still report it; then streams end and what is left is cut off.
            tracker.beginShutdown()
            await onStopAccepting()
            events.finish()
            // Waits for the last connection to close (not a poll); the waiter left behind after the
            // timeout is resumed when `closeAll` closes the rest.
            _ = await firstOf({ await tracker.drained(); return true }, orAfter: .seconds(5), false)
            tracker.closeAll()
        } onGracefulShutdown: {
            self.logger.info("control API: no longer accepting connections")
            server.channel.close(promise: nil)
        }
        socket.unlinkIfOurs()
    }

    // MARK: - Per connection

    private static func initialize(
        _ channel: any Channel, settings: Settings, tracker: ConnectionTracker, registry: Registry, logger: Logger
    ) -> EventLoopFuture<EventLoopFuture<ControlChannelOutcome>> {
        let peer: EventLoopFuture<PeerCredentials?>
        if let provider = channel as? any SocketOptionProvider {
            peer = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
            ).map { (credentials: PeerCredentials) in Optional(credentials) }
                .recover { _ in nil }
        } else {
            peer = channel.eventLoop.makeSucceededFuture(nil)
        }
        return peer.flatMapThrowing { credentials in
            // Counted by peer uid: per-uid caps, and the reserved slots only privileged peers may take.
            // Peers the policy refuses take no slot at all.
            let allowed = credentials.map { settings.peerPolicy.allows($0) } ?? false
            let refusal = tracker.admit(channel, uid: credentials?.uid, forbidden: !allowed)
            // Refused connections get their 403/503 answer, but only so many may wait for it; past that
            // they are closed at once (a flood of idle refused connections must not pin descriptors).
            if refusal != nil, tracker.refusedCount > settings.limits.maxConnections {
                throw ChannelError.ioOnClosedChannel
            }
            let admission: Admission
            if let credentials, allowed {
                admission = refusal.map { .overCapacity($0) } ?? .accepted(credentials)
            } else {
                admission = .refusedPeer(credentials)
            }
            // The first request may upgrade to RHP (`GET /v1/runtimes/{name}/attach`, `Upgrade: rhp`):
            // the connection stays counted against the same caps either way.
            let timeoutHandler = RequestTimeoutHandler(timeout: settings.limits.requestTimeout)
            let upgrader = RHPUpgrader(
                admission: admission, registry: registry, limits: settings.attach, logger: logger,
                timeoutHandler: NIOLoopBound(timeoutHandler, eventLoop: channel.eventLoop))
            let configuration = NIOUpgradableHTTPServerPipelineConfiguration(
                upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration<ControlChannelOutcome>(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let wrapped = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                                wrappingChannelSynchronously: channel
                            )
                            return .http(ControlConnection(admission: admission, channel: wrapped))
                        }
                    }
                ))
            let pipeline = channel.pipeline.syncOperations
            let outcome = try pipeline.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let upgradeHandler = try pipeline.handler(type: NIOTypedHTTPServerUpgradeHandler<ControlChannelOutcome>.self)
            try pipeline.addHandler(UpgradeHeaderFilter(), position: .before(upgradeHandler))
            try pipeline.addHandler(timeoutHandler)
            return outcome
        }
    }
}
