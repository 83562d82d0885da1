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
    private let handler: any Handler
    private let io: NIOLoopBound<ConnectionChannelHandler>
    private let nextRequestID = Atomic<UInt64>(0)
    private let state = Mutex(State())
    private let peerWarnings: PeerWarningLimiter
    /// Bodies this connection validates but never builds (host role with `discardUnusedBodies`).
    private let discarded: BodyKindSet
    /// nil when metrics go to swift-metrics' no-op backend.
    private let recorder: RHPCallRecorder?

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
        self.discarded = role == .host && configuration.discardUnusedBodies ? .unusedByHost : .none
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

    // MARK: Calls

    /// Sends `body` as a request and returns the response body.
    ///
    /// An `Error` response throws ``RHPError/Code/remote`` with the payload in ``RHPError/remote``.
    /// Also throws ``RHPError/Code/timeout`` (nil `timeout` waits until the connection closes),
    /// ``RHPError/Code/payloadTooLarge`` (nothing sent, connection intact),
    /// ``RHPError/Code/connectionClosed`` and ``RHPError/Code/cancelled``.
    public func call(_ body: Body, timeout: Duration? = nil) async throws(RHPError) -> Body {
        guard let recorder else { return try await callUnrecorded(body, timeout: timeout) }
        let started = ContinuousClock.now
        let result: Result<Body, RHPError>
        do {
            result = .success(try await callUnrecorded(body, timeout: timeout))
        } catch {
            result = .failure(error)
        }
        let elapsed = (ContinuousClock.now - started).components
        let nanoseconds = elapsed.seconds &* 1_000_000_000 &+ elapsed.attoseconds / 1_000_000_000
        switch result {
        case .success: recorder.record(body.kind, .success, nanoseconds: nanoseconds)
        case .failure(let error): recorder.record(body.kind, error.code == .timeout ? .timeout : .failure, nanoseconds: nanoseconds)
        }
        return try result.get()
    }

    private func callUnrecorded(_ body: Body, timeout: Duration?) async throws(RHPError) -> Body {
        let id = nextRequestID.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = try makeFrame(.request(id: id, body))
        let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
        let pending = PendingCall(kind: body.kind, timeout: timeout, deadline: deadline)
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<Body, RHPError>, Never>) in
                register(id: id, pending, continuation, frame: frame)
            }
        } onCancel: {
            cancelCall(id)
        }
        return try result.get()
    }

    /// Sends `RuntimePingRequest` and expects `Empty`.
    public func ping(timeout: Duration = .seconds(5)) async throws(RHPError) {
        let body = try await call(.runtimePingRequest, timeout: timeout)
        guard case .empty = body else { throw Self.unexpected(body, to: .runtimePingRequest) }
    }

    /// Sends `RuntimeAbortRequest` and expects `RuntimeAbortResponse`.
    public func abort(timeout: Duration = .seconds(1)) async throws(RHPError) {
        let body = try await call(.runtimeAbortRequest, timeout: timeout)
        guard case .runtimeAbortResponse = body else { throw Self.unexpected(body, to: .runtimeAbortRequest) }
    }

    // MARK: Handshake

    /// Host role: sends `RuntimeInfoRequest` (id 0 when it is the first call) and checks the answer.
    ///
    /// Fails with ``RHPError/Code/remote`` for an `Error` answer, ``RHPError/Code/unexpectedResponse``
    /// for any other variant, and ``RHPError/Code/protocolVersionMismatch`` unless the runtime's
    /// protocol major version is 5 (minor and patch are informational). On success the connection
    /// is ready and held runtime requests are released to the handler. A failed handshake leaves the
    /// connection open: the caller decides (Oasis kills the runtime).
    public func initHost(_ request: RuntimeInfoRequest, timeout: Duration = .seconds(1)) async throws(RHPError)
        -> RuntimeInfoResponse
    {
        guard role == .host else { throw RHPError(.invalidState, "rhp: initHost on a guest connection") }
        let body = try await call(.runtimeInfoRequest(request), timeout: timeout)
        guard case .runtimeInfoResponse(let response) = body else {
            throw Self.unexpected(body, to: .runtimeInfoRequest)
        }
        guard response.protocolVersion.major == Version.rhp.major else {
            throw RHPError(
                .protocolVersionMismatch,
                "rhp: runtime speaks protocol version \(response.protocolVersion), "
                    + "host speaks \(Version.rhp) (major versions must match)",
                peerProtocolVersion: response.protocolVersion
            )
        }
        becomeReady()
        logger.debug("rhp: handshake done", metadata: ["rhp.runtime_version": "\(response.runtimeVersion)"])
        return response
    }

    /// Guest role: waits for the host's `RuntimeInfoRequest`, answers it with `answer`, becomes ready.
    ///
    /// If `answer` throws, the host gets an `Error` body (see ``Handler``), the connection does not
    /// become ready, and this throws ``RHPError/Code/handshakeRefused``. A later `RuntimeInfoRequest`
    /// is answered with `Error {rhp/dispatcher, 1, "rhp: already initialized"}`. Returns the request.
    public func initGuest(
        timeout: Duration? = nil,
        _ answer: @Sendable (RuntimeInfoRequest) async throws -> RuntimeInfoResponse
    ) async throws(RHPError) -> RuntimeInfoRequest {
        guard role == .guest else { throw RHPError(.invalidState, "rhp: initGuest on a host connection") }
        let (id, request) = try await waitForHandshake(timeout: timeout)
        do {
            let response = try await answer(request)
            becomeReady()
            respond(to: id, with: .runtimeInfoResponse(response))
            return request
        } catch {
            let payload = ErrorPayload(handlerError: error)
            respond(to: id, with: .error(payload))
            throw RHPError(.handshakeRefused, "rhp: handshake refused: \(payload)", remote: payload)
        }
    }

    // MARK: Internals: calls

    struct PendingCall: Sendable {
        var kind: BodyKind
        var timeout: Duration?
        var deadline: NIODeadline?
        var continuation: UnsafeContinuation<Result<Body, RHPError>, Never>?
    }

    private func register(
        id: UInt64,
        _ pending: PendingCall,
        _ continuation: UnsafeContinuation<Result<Body, RHPError>, Never>,
        frame: ByteBuffer
    ) {
        var pending = pending
        pending.continuation = continuation
        let onLoop = channel.eventLoop.inEventLoop
        let outcome = state.withLock { state -> RegisterOutcome in
            if let reason = state.closeReason { return .closed(reason) }
            state.pending[id] = pending
            var outcome = RegisterOutcome.registered(armTimer: nil, drain: false)
            if let deadline = pending.deadline, state.timerDeadline.map({ deadline < $0 }) ?? true {
                state.timerDeadline = deadline
                state.timerToken &+= 1
                outcome = .registered(armTimer: (deadline, state.timerToken), drain: false)
            }
            if !onLoop {
                state.outbound.append(frame)
                if !state.drainScheduled {
                    state.drainScheduled = true
                    if case .registered(let arm, _) = outcome { outcome = .registered(armTimer: arm, drain: true) }
                }
            }
            return outcome
        }
        switch outcome {
        case .closed(let reason):
            continuation.resume(returning: .failure(Self.closedError(reason)))
        case .registered(let arm, let drain):
            if let (deadline, token) = arm { armCallTimer(deadline, token: token) }
            if onLoop {
                io.value.write(frame)
            } else if drain {
                channel.eventLoop.execute { self.drainOutbound() }
            }
            if Task.isCancelled { cancelCall(id) }
        }
    }

    private enum RegisterOutcome {
        case closed(CloseReason)
        case registered(armTimer: (NIODeadline, UInt64)?, drain: Bool)
    }

    private func cancelCall(_ id: UInt64) {
        guard let call = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        call.continuation?.resume(returning: .failure(RHPError(.cancelled, "rhp: call \(id) (\(call.kind)) cancelled")))
    }

    private func armCallTimer(_ deadline: NIODeadline, token: UInt64) {
        channel.eventLoop.scheduleTask(deadline: deadline) { self.expireCalls(token: token) }
    }

    private func expireCalls(token: UInt64) {
        let now = NIODeadline.now()
        let (expired, next) = state.withLock { state -> ([(UInt64, PendingCall)], (NIODeadline, UInt64)?) in
            guard state.timerToken == token else { return ([], nil) }
            var expired: [(UInt64, PendingCall)] = []
            var earliest: NIODeadline?
            for (id, call) in state.pending {
                guard let deadline = call.deadline else { continue }
                if deadline <= now {
                    expired.append((id, call))
                } else if earliest.map({ deadline < $0 }) ?? true {
                    earliest = deadline
                }
            }
            for (id, _) in expired { state.pending.removeValue(forKey: id) }
            state.timerDeadline = earliest
            guard let earliest else { return (expired, nil) }
            state.timerToken &+= 1
            return (expired, (earliest, state.timerToken))
        }
        for (id, call) in expired {
            let after = call.timeout.map { " after \($0)" } ?? ""
            call.continuation?.resume(returning: .failure(RHPError(.timeout, "rhp: call \(id) (\(call.kind)) timed out\(after)")))
        }
        if let (deadline, token) = next { armCallTimer(deadline, token: token) }
    }

    // MARK: Internals: sending

    private static let allocator = ByteBufferAllocator()

    private func makeFrame(_ message: Message) throws(RHPError) -> ByteBuffer {
        var buffer = Self.allocator.buffer(capacity: 64)
        try message.writeFrame(into: &buffer, sendLimit: configuration.sendLimit)
        return buffer
    }

    /// Hands an already framed buffer to the event loop for writing.
    func sendFrame(_ frame: ByteBuffer) {
        send(frame)
    }

    private func send(_ frame: ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            io.value.write(frame)
            return
        }
        let schedule = state.withLock { state -> Bool in
            guard state.closeReason == nil else { return false }
            state.outbound.append(frame)
            defer { state.drainScheduled = true }
            return !state.drainScheduled
        }
        if schedule { channel.eventLoop.execute { self.drainOutbound() } }
    }

    private func drainOutbound() {
        let frames = state.withLock { state -> [ByteBuffer] in
            state.drainScheduled = false
            defer { state.outbound.removeAll(keepingCapacity: true) }
            return state.outbound
        }
        let io = io.value
        for frame in frames { io.enqueue(frame) }
        io.flush()
    }

    private func respond(to id: UInt64, with body: Body) {
        let frame: ByteBuffer
        do {
            frame = try makeFrame(.response(id: id, body))
        } catch {
            logger.error("rhp: cannot send response \(id) (\(body.kind)): \(error); answering with an Error body")
            let fallback = ErrorPayload(module: "unknown", code: 1, message: error.message)
            guard let fallbackFrame = try? makeFrame(.response(id: id, .error(fallback))) else { return }
            frame = fallbackFrame
        }
        send(frame)
    }

    // MARK: Internals: receiving (on the event loop)

    func received(_ payload: ByteBuffer) {
        handle(Result { () throws(RHPError) in try decode(payload) })
    }

    /// Decodes one frame payload; pure, so it may run off the event loop (big frames do).
    func decode(_ payload: ByteBuffer) throws(RHPError) -> Message {
        try Message(payload: payload.readableBytesView, discarding: discarded)
    }

    /// A warning the peer can trigger at will: rate-limited per connection.
    private func peerWarning(_ message: @autoclosure () -> Logger.Message) {
        peerWarnings.warning(message(), logger: logger, eventLoop: channel.eventLoop)
    }

    /// Acts on one decoded frame (on the event loop, in arrival order).
    func handle(_ result: Result<Message, RHPError>) {
        let message: Message
        switch result {
        case .success(let decoded):
            message = decoded
        case .failure(let error):
            if error.code == .unsupportedMessageType {
                peerWarning("rhp: dropping malformed message: \(BoundedText.bounded(error.message))")
            } else {
                fail(error)
            }
            return
        }
        if message.messageType == .response {
            complete(message.id, message.body)
        } else {
            dispatch(message.id, message.body)
        }
    }

    private func complete(_ id: UInt64, _ body: Body) {
        guard let call = state.withLock({ $0.pending.removeValue(forKey: id) }) else {
            peerWarning("rhp: dropping response for unknown request id \(id) (\(body.kind))")
            return
        }
        if case .error(let payload) = body {
            call.continuation?.resume(returning: .failure(.remote(payload)))
        } else {
            call.continuation?.resume(returning: .success(body))
        }
    }

    private func dispatch(_ id: UInt64, _ body: Body) {
        if role == .guest, case .runtimeInfoRequest(let request) = body {
            handshakeArrived(id, request)
            return
        }
        enum Hold { case none, held(UInt64), full }
        let hold = state.withLock { state -> Hold in
            if state.ready || state.closeReason != nil { return .none }
            // A peer flooding requests before the handshake cannot grow the hold without bound.
            if state.held.count >= Self.maximumHeldRequests { return .full }
            state.heldToken &+= 1
            state.held.append(HeldRequest(token: state.heldToken, id: id, body: body))
            return .held(state.heldToken)
        }
        if case .full = hold {
            peerWarning("rhp: request \(id) (\(body.kind)) before ready with \(Self.maximumHeldRequests) already held; answering not ready")
            respond(to: id, with: .error(.notReady))
        } else if case .held(let token) = hold {
            logger.debug("rhp: holding request \(id) (\(body.kind)) until ready")
            channel.eventLoop.scheduleTask(in: TimeAmount(configuration.notReadyHold)) { self.expireHeld(token: token) }
        } else if closeReason == nil {
            spawnHandler(id, body)
        }
    }

    /// Most requests held until the handshake completes; later ones are answered not ready at once.
    static let maximumHeldRequests = 256

    private func spawnHandler(_ id: UInt64, _ request: Body) {
        if let response = handler.immediateResponse(to: request) {
            respond(to: id, with: response)
            return
        }
        let work: @Sendable () async -> Void = {
            let response: Body
            do {
                response = try await self.handler.handle(request)
            } catch {
                response = .error(ErrorPayload(handlerError: error))
            }
            self.respond(to: id, with: response)
        }
        switch configuration.handlerExecution {
        case .eventLoop: Task(executorPreference: taskExecutor, operation: work)
        case .globalExecutor: Task(operation: work)
        }
    }

    private func expireHeld(token: UInt64) {
        let request = state.withLock { state -> HeldRequest? in
            guard let index = state.held.firstIndex(where: { $0.token == token }) else { return nil }
            return state.held.remove(at: index)
        }
        guard let request else { return }
        peerWarning("rhp: request \(request.id) (\(request.body.kind)) still not ready after the hold; answering not ready")
        respond(to: request.id, with: .error(.notReady))
    }

    func becomeReady() {
        let held = state.withLock { state -> [HeldRequest] in
            state.ready = true
            defer { state.held.removeAll() }
            return state.held
        }
        for request in held { spawnHandler(request.id, request.body) }
    }

    // MARK: Internals: guest handshake

    private func handshakeArrived(_ id: UInt64, _ request: RuntimeInfoRequest) {
        let waiter = state.withLock { state -> HandshakeArrival in
            if state.handshakeReceived { return .duplicate }
            state.handshakeReceived = true
            if let waiter = state.handshakeWaiter {
                state.handshakeWaiter = nil
                return .deliver(waiter)
            }
            state.pendingHandshake = (id, request)
            return .stored
        }
        switch waiter {
        case .duplicate:
            peerWarning("rhp: second RuntimeInfoRequest (id \(id)) refused")
            respond(to: id, with: .error(ErrorPayload(module: "rhp/dispatcher", code: 1, message: "rhp: already initialized")))
        case .deliver(let continuation):
            continuation.resume(returning: .success((id, request)))
        case .stored:
            break
        }
    }

    private enum HandshakeArrival {
        case duplicate
        case deliver(UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>)
        case stored
    }

    private func waitForHandshake(timeout: Duration?) async throws(RHPError) -> (UInt64, RuntimeInfoRequest) {
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation {
                (continuation: UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>) in
                let immediate = state.withLock { state -> Result<(UInt64, RuntimeInfoRequest), RHPError>? in
                    if state.guestInitStarted {
                        return .failure(RHPError(.invalidState, "rhp: initGuest called twice"))
                    }
                    state.guestInitStarted = true
                    if let handshake = state.pendingHandshake {
                        state.pendingHandshake = nil
                        return .success(handshake)
                    }
                    if let reason = state.closeReason { return .failure(Self.closedError(reason)) }
                    state.handshakeWaiter = continuation
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                if let timeout {
                    channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                        self.abandonHandshakeWait(RHPError(.timeout, "rhp: no RuntimeInfoRequest within \(timeout)"))
                    }
                }
                if Task.isCancelled { abandonHandshakeWait(RHPError(.cancelled, "rhp: initGuest cancelled")) }
            }
        } onCancel: {
            abandonHandshakeWait(RHPError(.cancelled, "rhp: initGuest cancelled"))
        }
        return try result.get()
    }

    private func abandonHandshakeWait(_ error: RHPError) {
        let waiter = state.withLock { state in
            defer { state.handshakeWaiter = nil }
            return state.handshakeWaiter
        }
        waiter?.resume(returning: .failure(error))
    }

    // MARK: Internals: closing

    func fail(_ error: RHPError) {
        closeWith(.failed(error))
    }

    private func closeWith(_ reason: CloseReason) {
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

    private static func closedError(_ reason: CloseReason) -> RHPError {
        RHPError(.connectionClosed, "rhp: connection closed (\(reason))")
    }

    private static func unexpected(_ body: Body, to request: BodyKind) -> RHPError {
        RHPError(.unexpectedResponse, "rhp: unexpected response \(body.kind) to \(request)")
    }
}

extension Connection {
    struct HeldRequest: Sendable {
        var token: UInt64
        var id: UInt64
        var body: Body
    }

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
