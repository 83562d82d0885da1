public import Logging
public import NIOCore
public import NIOPosix

extension Connection {
    /// Wraps an already-connected UNIX stream socket: an accepted connection, a connected client
    /// socket, or one end of a `socketpair`.
    ///
    /// Takes ownership of `fd`: the connection closes it when it closes. If this throws, NIO has
    /// closed it when a channel was already made around it; a caller should not reuse it either way.
    /// Reading starts at once, so `handler` must be ready to answer.
    public static func withConnectedSocket(
        _ fd: CInt,
        role: Role,
        handler: any Handler = UnsupportedRequestHandler(),
        configuration: ConnectionConfiguration = ConnectionConfiguration(),
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(RHPError) -> Connection {
        do {
            return try await ClientBootstrap(group: eventLoopGroup)
                .withConnectedSocket(fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try install(on: channel, role: role, handler: handler, configuration: configuration, logger: logger)
                    }
                }
        } catch {
            throw RHPError(channelError: error)
        }
    }

    /// Connects to a UNIX socket path (the guest's way in: `OASIS_WORKER_HOST`).
    public static func connect(
        unixSocketPath path: String,
        role: Role = .guest,
        handler: any Handler = UnsupportedRequestHandler(),
        configuration: ConnectionConfiguration = ConnectionConfiguration(),
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(RHPError) -> Connection {
        do {
            return try await ClientBootstrap(group: eventLoopGroup)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try install(on: channel, role: role, handler: handler, configuration: configuration, logger: logger)
                    }
                }
        } catch {
            throw RHPError(channelError: error)
        }
    }

    /// Adds the RHP handlers to a channel that has not read anything yet and returns its connection.
    ///
    /// For channels made elsewhere, e.g. in a `ServerBootstrap` child channel initializer. Must run
    /// on the channel's event loop.
    public static func install(
        on channel: any Channel,
        role: Role,
        handler: any Handler = UnsupportedRequestHandler(),
        configuration: ConnectionConfiguration = ConnectionConfiguration(),
        logger: Logger
    ) throws -> Connection {
        let channelHandler = ConnectionChannelHandler(
            writeTimeout: configuration.writeTimeout, offLoopThreshold: configuration.offLoopDecodingThreshold)
        let connection = Connection(
            channel: channel,
            role: role,
            handler: handler,
            configuration: configuration,
            logger: logger,
            channelHandler: channelHandler
        )
        try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(FrameDecoder(receiveLimit: configuration.receiveLimit)),
            channelHandler
        )
        return connection
    }
}
