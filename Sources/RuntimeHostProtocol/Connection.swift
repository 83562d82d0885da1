import Logging
import NIOCore
import Synchronization

/// One RHP session over a connected UNIX stream socket, in the host or the guest role.
///
/// Create one with ``withConnectedSocket(_:role:handler:configuration:logger:eventLoopGroup:)``
/// (an accepted or connected socket, or one end of a `socketpair`) or
/// ``connect(unixSocketPath:role:handler:configuration:logger:eventLoopGroup:)``.
/// The host then calls ``initHost(_:timeout:)``, the guest ``initGuest(timeout:_:)``; both sides may
/// ``call(_:timeout:)`` at any time, with many calls in flight, and the ``Handler`` answers the
/// peer's requests concurrently. Any framing or decoding failure closes the connection and fails
/// every pending call; ``waitUntilClosed()`` reports why it closed.
///
/// Sendable without `@unchecked`: mutable state sits in a `Mutex`, the event-loop side in a
/// `NIOLoopBound`, and the id counter is an `Atomic`.
///
/// This file holds the state, the public status and closing; each other job has its own file:
/// `Connection+Calls` (calls, pending table), `+CallTimers`, `+Outbound` (queue and drain), `+Inbound`
/// (decode, complete, dispatch), `+ReadyGate` (held requests), `+Handshake` (host and guest), `+Bootstrap`.
public final class Connection: Sendable {
    public enum Role: String, Sendable, Hashable {
        case host
        case guest
    }

    public let role: Role
    public let configuration: ConnectionConfiguration
    /// Runs tasks on this connection's event loop. Calls made from a task that prefers this
    /// executor (`withTaskExecutorPreference`) need no thread hop: the lowest latency available.
    public let taskExecutor: any TaskExecutor

    let channel: any Channel
    let logger: Logger
    let handler: any Handler
    let io: NIOLoopBound<ConnectionChannelHandler>
    let nextRequestID = Atomic<UInt64>(0)
    let state = Mutex(State())
    let peerWarnings: PeerWarningLimiter
    /// nil when metrics go to swift-metrics' no-op backend.
    let recorder: RHPCallRecorder?

    /// Must run on `channel.eventLoop`; installs nothing (see the factories).
    init(
        channel: any Channel,
        role: Role,
        handler: any Handler,
        configuration: ConnectionConfiguration,
        logger: Logger,
        channelHandler: ConnectionChannelHandler
    ) {
        self.channel = channel
        self.role = role
        self.handler = handler
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "rhp.role"] = "\(role.rawValue)"
        self.logger = logger
        self.taskExecutor = EventLoopTaskExecutor(channel.eventLoop)
        self.io = NIOLoopBound(channelHandler, eventLoop: channel.eventLoop)
        self.peerWarnings = PeerWarningLimiter(burst: configuration.peerWarningBurst, window: configuration.peerWarningWindow)
        self.recorder = RHPCallRecorder(configuration.metrics)
        channelHandler.connection = self
    }

    // MARK: Public state

    /// True once the handshake succeeded (host) or was answered (guest).
    public var isReady: Bool { state.withLock { $0.ready } }

    /// Why the connection closed, nil while it is open.
    public var closeReason: CloseReason? { state.withLock { $0.closeReason } }

    /// Closes the connection; pending calls fail with ``RHPError/Code/connectionClosed``. Idempotent.
    public func close() {
        closeWith(.closedLocally)
    }

    /// Returns once the socket is closed, with the reason; at once if it already is.
    public func waitUntilClosed() async -> CloseReason {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<CloseReason, Never>) in
            let reason = state.withLock { state -> CloseReason? in
                if state.channelClosed { return state.closeReason ?? .closedLocally }
                state.closeWaiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }

    // MARK: Internals: closing

    func fail(_ error: RHPError) {
        closeWith(.failed(error))
    }

    func closeWith(_ reason: CloseReason) {
        let taken = state.withLock { state -> ([PendingCall], UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>?)? in
            guard state.closeReason == nil else { return nil }
            state.closeReason = reason
            defer {
                state.pending.removeAll()
                state.held.removeAll()
                state.outbound.removeAll()
                state.handshakeWaiter = nil
            }
            return (Array(state.pending.values), state.handshakeWaiter)
        }
        guard let (calls, waiter) = taken else { return }
        switch reason {
        case .failed: logger.warning("rhp: closing connection: \(BoundedText.bounded("\(reason)"))")
        default: logger.debug("rhp: connection \(reason)")
        }
        let error = Self.closedError(reason)
        for call in calls { call.continuation?.resume(returning: .failure(error)) }
        waiter?.resume(returning: .failure(error))
        channel.close(promise: nil)
    }

    func channelDidClose() {
        closeWith(.closedByPeer)
        let (waiters, reason) = state.withLock { state -> ([UnsafeContinuation<CloseReason, Never>], CloseReason) in
            state.channelClosed = true
            defer { state.closeWaiters.removeAll() }
            return (state.closeWaiters, state.closeReason ?? .closedByPeer)
        }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    static func closedError(_ reason: CloseReason) -> RHPError {
        RHPError(.connectionClosed, "rhp: connection closed (\(reason))")
    }

    static func unexpected(_ body: Body, to request: BodyKind) -> RHPError {
        RHPError(.unexpectedResponse, "rhp: unexpected response \(body.kind) to \(request)")
    }
}

extension Connection {
    struct State: Sendable {
        var pending: [UInt64: PendingCall] = [:]
        var timerDeadline: NIODeadline?
        var timerToken: UInt64 = 0
        var outbound: [ByteBuffer] = []
        var drainScheduled = false
        var ready = false
        var held: [HeldRequest] = []
        var heldToken: UInt64 = 0
        var guestInitStarted = false
        var handshakeReceived = false
        var pendingHandshake: (UInt64, RuntimeInfoRequest)?
        var handshakeWaiter: UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>?
        var closeReason: CloseReason?
        var channelClosed = false
        var closeWaiters: [UnsafeContinuation<CloseReason, Never>] = []
    }
}
