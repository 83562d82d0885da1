#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
public import RuntimeHostProtocol
public import Sandbox
import Synchronization
import SystemCalls
public import SystemPackage

/// Connects a runtime through `host.sock` in its private directory: upstream's `UnixSocketConnector`.
///
/// The socket is owned by the sandbox's host uid with mode 0600, inside a directory only that uid (and
/// root) can enter. Sandboxed runtimes see it at `/host.sock`; unsandboxed ones at its host path. Either
/// way `OASIS_WORKER_HOST` names it. Exactly one connection is accepted; later ones are closed.
public final class UnixSocketConnector: Connector {
    /// Where a sandboxed runtime finds the socket.
    public static let guestSocketPath: FilePath = "/host.sock"
    public static let environmentVariable = "OASIS_WORKER_HOST"

    public let socketPath: FilePath
    public let sandboxed: Bool
    private let listener: any Channel
    private let accepted: EventLoopPromise<Connection>
    /// Set once ``connect(process:timeout:)`` returned the connection to its caller.
    private let handedOver = AtomicFlag()

    /// Binds `<runtimeDirectory>/host.sock` and starts listening.
    public static func listen(context: ConnectorContext) async throws -> UnixSocketConnector {
        let socketPath = context.runtimeDirectory.appending("host.sock")
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let accepted = eventLoop.makePromise(of: Connection.self)
        let claimed = AtomicFlag()
        let refusals = AtomicCounter()
        let listener: any Channel
        do {
            listener = try await ServerBootstrap(group: eventLoop)
                .serverChannelOption(ChannelOptions.backlog, value: 4)
                .childChannelInitializer { channel in
                    guard claimed.claim() else {
                        // The runtime can connect in a loop: one warning, the rest at debug level.
                        if refusals.next() == 0 {
                            context.logger.warning("second connection to host.sock refused (further refusals are logged at debug level)")
                        } else {
                            context.logger.debug("another connection to host.sock refused")
                        }
                        return channel.close()
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        let connection = try Connection.install(
                            on: channel,
                            role: .host,
                            handler: context.handler,
                            configuration: context.connectionConfiguration,
                            logger: context.logger
                        )
                        accepted.succeed(connection)
                    }
                }
                .bind(unixDomainSocketPath: socketPath.string, cleanupExistingSocketFile: true)
                .get()
        } catch {
            accepted.fail(error)
            throw ProvisionerError(.hostSocket, "failed to create host socket \(socketPath): \(error)")
        }
        let connector = UnixSocketConnector(
            socketPath: socketPath, sandboxed: context.sandboxed, listener: listener, accepted: accepted)
        do {
            // By descriptor, not by path: a symlink swapped in after bind is refused, never followed.
            try secureOwnership(
                of: socketPath.string, expecting: .socket, owner: context.owner.map { ($0.uid, $0.gid) }, mode: 0o600
            )
        } catch {
            connector.close()
            throw ProvisionerError(.hostSocket, "failed to secure host socket: \(error.operation)", errno: error.errno)
        }
        return connector
    }

    private init(socketPath: FilePath, sandboxed: Bool, listener: any Channel, accepted: EventLoopPromise<Connection>) {
        self.socketPath = socketPath
        self.sandboxed = sandboxed
        self.listener = listener
        self.accepted = accepted
    }

    /// The path the runtime must connect to.
    public var guestSocketPath: FilePath { sandboxed ? Self.guestSocketPath : socketPath }

    public func configure(_ spec: inout SandboxSpec) throws {
        spec.environment[Self.environmentVariable] = guestSocketPath.string
        if sandboxed {
            spec.binds.append(BindMount(source: socketPath, target: Self.guestSocketPath, mode: .readWrite))
        }
    }

    public func connect(process: SandboxProcess, timeout: Duration) async throws -> Connection {
        let accepted = self.accepted.futureResult
        return try await withThrowingTaskGroup(of: Connection.self) { group in
            group.addTask { try await accepted.get() }
            group.addTask {
                guard let status = await process.waitForExitUnlessCancelled() else { throw CancellationError() }
                throw ProvisionerError(.exitedBeforeConnecting, "runtime exited before connecting (\(status))")
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw ProvisionerError(.connectTimeout, "runtime did not connect within \(timeout)")
            }
            // Whatever comes first, stop listening: that also ends the accept wait, so the group can finish.
            defer {
                close()
                group.cancelAll()
            }
            guard let connection = try await group.next() else { throw CancellationError() }
            handedOver.set()
            return connection
        }
    }

    /// Stops listening. A connection accepted but never handed over by ``connect(process:timeout:)`` is closed.
    public func close() {
        listener.close(promise: nil)
        accepted.fail(ProvisionerError(.hostSocket, "connector closed"))
        let handedOver = self.handedOver
        accepted.futureResult.whenSuccess { connection in
            if !handedOver.isSet { connection.close() }
        }
    }
}

/// A Sendable boolean shared with event-loop callbacks.
/// A counter shared by escaping closures (`Atomic` itself cannot be captured).
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)

    /// The value before this call's increment.
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }

    /// Sets the flag; true only for the first caller.
    func claim() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
