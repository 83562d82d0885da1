public import CBOR
import Foundation
import Logging
public import RuntimeHostProtocol
public import Sandbox
import Synchronization

/// One supervised runtime: starts it, connects to it, keeps it alive, and stops it. Upstream's `sandboxHost`.
///
/// A single manager task owns the runtime's process and connection; everything else talks to it through
/// ``ManagerInput``s. Supervision follows upstream: the first start is immediate, restarts back off
/// exponentially (the backoff resets after ``SupervisionTimings/backoffResetAfter`` of healthy running and
/// supervision gives up after ``SupervisionTimings/restartGiveUpAfter``), a watchdog pings the runtime and
/// kills it when the ping fails, and an abort that fails or is forced kills the runtime and answers only
/// once it runs again. Unlike upstream, a connection the runtime closes (or corrupts) is noticed at once.
public final class Runtime: Sendable {
    public let id: Namespace
    public let name: String
    let spec: RuntimeSpec
    let environment: ProvisionerEnvironment
    let logger: Logger

    /// Answers the runtime's own requests: an attached host, else `spec.handler` (see ``attachHost(_:)``).
    let hostSide: HostSide
    /// The owner's observer of this runtime's notices (``Provisioner/newRuntime(_:onNotice:)``).
    private let onNotice: (@Sendable (RuntimeNotice) -> Void)?
    private let broadcaster = EventBroadcaster<RuntimeNotice> { .dropped(count: $0) }
    private let state = Mutex(SharedState())

    /// Abort requests waiting for the manager; upstream's control channel holds 16.
    static let controlQueueLimit = 16

    struct SharedState {
        var manager: Task<Void, Never>?
        var inputs: AsyncStream<ManagerInput>.Continuation?
        var connection: Connection?
        var info: RuntimeInfoResponse?
        var version: Version?
        var capabilityTEE: CBORRawItem?
        var status = RuntimeStatus()
        /// The current incarnation's cgroup, for ``Runtime/usage()``.
        var cgroup: RuntimeCgroup?
        var queuedAborts: [AbortRequest] = []
    }

    init(spec: RuntimeSpec, environment: ProvisionerEnvironment, onNotice: (@Sendable (RuntimeNotice) -> Void)? = nil) {
        self.id = spec.id
        self.onNotice = onNotice
        self.name = spec.name
        self.spec = spec
        self.environment = environment
        self.hostSide = HostSide(fallback: spec.handler)
        var logger = environment.configuration.logger
        logger[metadataKey: "runtime_id"] = "\(spec.id)"
        logger[metadataKey: "runtime_name"] = "\(spec.name)"
        self.logger = logger
        state.withLock { $0.status.limits = spec.limits }
    }

    // MARK: Lifecycle

    /// Starts supervision; a no-op while it is already running.
    public func start() {
        state.withLock { state in
            guard state.manager == nil else { return }
            let (inputs, continuation) = AsyncStream<ManagerInput>.makeStream()
            state.inputs = continuation
            state.status.state = .starting
            state.status.lastError = nil
            state.status.failure = nil
            state.manager = Task { [self] in
                var supervisor = Supervisor(runtime: self, inputs: inputs)
                await supervisor.run()
            }
        }
    }

    /// Stops supervision and waits until the runtime process is gone. Idempotent.
    public func stop() async {
        let manager = state.withLock { $0.manager }
        guard let manager else { return }
        manager.cancel()
        await manager.value
        state.withLock { state in
            if state.manager == manager {
                state.manager = nil
                state.inputs = nil
            }
        }
    }

    // MARK: Talking to the runtime

    /// Asks the runtime to abort its current work: upstream's `Abort`.
    ///
    /// Without a connection this does nothing. Otherwise a `RuntimeAbortRequest` is sent; when it fails, times
    /// out, or `force` is set, the runtime is killed, and this returns once the process is reaped and
    /// `stopped` was emitted (upstream's behaviour); the restart follows on its own and its outcome is not
    /// reported here. A request still queued when the runtime restarts fails with `runtime_restarted`.
    /// With `timeout`, the caller stops waiting after it with a `timeout` error (the abort itself goes on).
    public func abort(force: Bool, timeout: Duration? = nil) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let reply = AbortReply(continuation)
            let outcome: Result<Void, ProvisionerError>? = state.withLock { state in
                guard state.connection != nil, let inputs = state.inputs else { return .success(()) }
                guard state.queuedAborts.count < Self.controlQueueLimit else {
                    return .failure(ProvisionerError(.controlQueueFull, "command channel is full"))
                }
                state.queuedAborts.append(AbortRequest(force: force, reply: reply))
                inputs.yield(.abortQueued)
                return nil
            }
            if let outcome {
                reply.resume(with: outcome.mapError { $0 as any Error })
            } else if let timeout {
                reply.expire(after: timeout)
            }
        }
    }

    /// Sends a request to the runtime, waiting (with backoff) until it is ready or `timeout` passes:
    /// upstream's `Call`.
    ///
    /// Only "not ready" (no connection yet) is retried (with upstream's backoff: 500 ms growing ×1.5 with jitter, capped by
    /// the deadline); once the request is sent its outcome is final. The runtime's `Error` body throws
    /// `RHPError` ``RHPError/Code/remote`` with the payload; the deadline throws
    /// ``ProvisionerError/Code/timeout``; a runtime that is not supervised (stopped) throws
    /// ``ProvisionerError/Code/stopped`` at once. The request id is the connection's own, so calls made
    /// here never collide with the watchdog's pings. A runtime backing off after a failed start or a crash
    /// (the "restarting") throws ``ProvisionerError/Code/restarting`` at once with the failure.
    public func call(_ body: Body, timeout: Duration) async throws -> Body {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var backoff = ExponentialBackoff(maxInterval: .seconds(60), maxElapsed: nil)
        while true {
            let (connection, supervised, failure) = state.withLock { state in
                // Backing off after a failed start or a crash: the caller hears why instead of waiting.
                (state.connection, state.manager != nil, state.status.state == .backoff ? state.status.lastError : nil)
            }
            if let connection {
                let remaining = deadline - clock.now
                guard remaining > .zero else { throw Self.callTimeout(body, timeout) }
                let result: Result<Body, RHPError>
                do { result = .success(try await connection.call(body, timeout: remaining)) } catch { result = .failure(error) }
                switch result {
                case .success(let response): return response
                case .failure(let error) where error.code == .timeout: throw Self.callTimeout(body, timeout)
                case .failure(let error): throw error
                }
            }
            guard supervised else { throw ProvisionerError(.stopped, "runtime is stopped") }
            if let failure { throw ProvisionerError(.restarting, "runtime is restarting after a failure: \(failure)") }
            guard let delay = backoff.nextDelay(elapsed: .zero), clock.now < deadline else {
                throw Self.callTimeout(body, timeout)
            }
            try await Task.sleep(for: min(delay, deadline - clock.now))
        }
    }

    private static func callTimeout(_ body: Body, _ timeout: Duration) -> ProvisionerError {
        ProvisionerError(.timeout, "\(body.kind) got no answer within \(timeout)")
    }

    /// Sends a request to the running incarnation at once (no waiting for readiness): what an attached
    /// host's requests go through. Throws ``ProvisionerError/Code/notReady`` without a connection.
    public func forward(_ body: Body, timeout: Duration?) async throws -> Body {
        guard let connection = state.withLock({ $0.connection }) else {
            throw ProvisionerError(.notReady, "runtime is not ready")
        }
        return try await connection.call(body, timeout: timeout)
    }

    /// Makes `handler` answer the runtime's own requests until the attachment is detached.
    ///
    /// Needs a spec with ``RuntimeSpec/attachable``. Requests that arrived before the attachment keep
    /// the answer of the handler they arrived under (their payloads may have been dropped unread).
    /// Throws ``ProvisionerError/Code/alreadyAttached`` while another host is attached. Supervision
    /// (watchdog pings, aborts, restarts) goes on as before; the attachment outlives restarts.
    public func attachHost(_ handler: any Handler) throws -> HostAttachment {
        guard spec.attachable else { throw ProvisionerError(.notAttachable, "runtime \(name) is not attachable") }
        guard let token = hostSide.attach(handler) else {
            throw ProvisionerError(.alreadyAttached, "another host is attached to runtime \(name)")
        }
        logger.info("host attached")
        return HostAttachment(hostSide: hostSide, token: token, logger: logger)
    }

    /// Whether a host is attached now.
    public var hostAttached: Bool { hostSide.isAttached }

    /// The handshake's answer of the running incarnation; nil while not running.
    public var currentInfo: RuntimeInfoResponse? { state.withLock { $0.connection == nil ? nil : $0.info } }

    /// Round-trips a `RuntimePingRequest`; returns the measured time.
    public func ping(timeout: Duration = .seconds(5)) async throws -> Duration {
        guard let connection = state.withLock({ $0.connection }) else {
            throw ProvisionerError(.notReady, "runtime is not running")
        }
        let clock = ContinuousClock()
        let started = clock.now
        try await connection.ping(timeout: timeout)
        return clock.now - started
    }

    /// What the runtime answered in the handshake, once it is ready.
    public func runtimeInfo(timeout: Duration = .seconds(5)) async throws -> RuntimeInfoResponse {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var backoff = ExponentialBackoff(maxInterval: .seconds(60), maxElapsed: nil)
        while true {
            if let info = state.withLock({ $0.info }) { return info }
            guard let delay = backoff.nextDelay(elapsed: .zero), clock.now < deadline else {
                throw ProvisionerError(.notReady, "runtime is not yet ready")
            }
            try await Task.sleep(for: min(delay, deadline - clock.now))
        }
    }

    /// The version the running runtime reported; nil when it is not running.
    public var activeVersion: Version? { state.withLock { $0.connection == nil ? nil : $0.version } }

    /// The runtime's TEE capability (`node.CapabilityTEE`, as raw CBOR) as the host initializer gave it;
    /// nil while not running and for non-TEE runtimes (this provisioner starts no TEEs).
    public var capabilityTEE: CBORRawItem? { state.withLock { $0.connection == nil ? nil : $0.capabilityTEE } }

    /// Asks for a TEE capability refresh; without TEE support there is nothing to refresh.
    public func updateCapabilityTEE() {}

    public var status: RuntimeStatus {
        let attached = hostSide.isAttached
        return state.withLock { state in
            var status = state.status
            status.protocolVersion = state.connection == nil ? nil : state.info?.protocolVersion
            status.hostAttached = attached
            return status
        }
    }

    /// `status.state` without copying the rest of the status (state counts over many runtimes).
    public var currentState: RuntimeState { state.withLock { $0.status.state } }

    /// What the running incarnation's cgroup has consumed; nil when it is not running in one.
    /// Reads a few cgroup files: call it when asked, not on a timer.
    public func usage() -> ResourceUsage? {
        state.withLock { $0.cgroup }?.usage()
    }

    // MARK: Notices

    /// Every notice from now on, for as long as the caller iterates (upstream's `WatchEvents`).
    public func events() -> AsyncStream<RuntimeNotice> { broadcaster.subscribe() }

    /// Posts a notice as supervision does (upstream's `EmitEvent`): to the configuration's observer, the
    /// owner's observer and every ``events()`` subscriber, in that order, before it returns.
    public func emit(_ notice: RuntimeNotice) {
        environment.configuration.noticeObserver(self, notice)
        onNotice?(notice)
        broadcaster.emit(notice)
    }

    /// Ends every ``events()`` stream once its subscriber has read the notices already posted; call after
    /// the last ``stop()`` (the runtime is not started again). Later notices reach only the observers.
    public func finishEvents() { broadcaster.finish() }

    // MARK: Manager side

    @discardableResult
    func updateState<T>(_ body: (inout SharedState) -> T) -> T {
        state.withLock { body(&$0) }
    }

    /// Called by the manager task as its last act: supervision can be started again.
    func managerEnded() {
        state.withLock { state in
            state.manager = nil
            state.inputs = nil
        }
    }

    /// Takes every queued abort request.
    func takeQueuedAborts() -> [AbortRequest] {
        state.withLock { state in
            defer { state.queuedAborts.removeAll() }
            return state.queuedAborts
        }
    }

    func takeNextAbort() -> AbortRequest? {
        state.withLock { $0.queuedAborts.isEmpty ? nil : $0.queuedAborts.removeFirst() }
    }

    func yield(_ input: ManagerInput) {
        _ = state.withLock { $0.inputs?.yield(input) }
    }
}

/// What the manager task reacts to.
enum ManagerInput: Sendable {
    case abortQueued
    case processExited(generation: Int, ExitStatus)
    case connectionClosed(generation: Int, CloseReason)
    case watchdogTick(generation: Int)
    case healthy(generation: Int)
    /// The incarnation's cgroup saw an OOM kill.
    case outOfMemory(generation: Int)
}

/// A caller waiting in ``Runtime/abort(force:timeout:)``.
struct AbortRequest: Sendable {
    var force: Bool
    var reply: AbortReply
}

/// The answer to one abort caller: resumed exactly once, by the manager or by the caller's deadline.
final class AbortReply: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, any Error>?>
    private let timer = Mutex<Task<Void, Never>?>(nil)

    init(_ continuation: CheckedContinuation<Void, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(with result: Result<Void, any Error>) {
        guard let continuation = continuation.withLock({ $0.take() }) else { return }
        timer.withLock { $0?.cancel() }
        continuation.resume(with: result)
    }

    func resume() { resume(with: .success(())) }
    func resume(throwing error: any Error) { resume(with: .failure(error)) }

    /// Fails the caller with `timeout` after `deadline` unless answered before.
    func expire(after deadline: Duration) {
        let task = Task { [self] in
            guard (try? await Task.sleep(for: deadline)) != nil else { return }
            resume(throwing: ProvisionerError(.timeout, "abort did not finish within \(deadline)"))
        }
        timer.withLock { $0 = task }
    }
}
