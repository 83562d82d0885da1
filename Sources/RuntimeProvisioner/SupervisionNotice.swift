public import RuntimeHostProtocol
public import Sandbox

/// What supervision did, with the facts an operator's log needs (pids, exit statuses, delays).
///
/// A superset of ``RuntimeEvent`` for observers such as sandboxd's journal integration: it also reports
/// the decisions that are not events (restart scheduled, gave up, watchdog kill, abort). Delivered through
/// ``ProvisionerConfiguration/supervisionObserver`` from the runtime's manager task, in order.
public enum SupervisionNotice: Sendable, Hashable {
    /// The runtime passed the handshake and host initializer; `restarts` precede this start.
    case started(pid: Int32, version: Version, restarts: Int)
    /// A start attempt failed (attempt number `attempt`, 1-based).
    case failedToStart(error: String, attempt: Int)
    /// The runtime process is gone; `requested` when supervision stopped it on request.
    case stopped(pid: Int32?, exit: ExitStatus?, requested: Bool)
    /// The runtime will be started again after `delay`; that start is restart number `restart`.
    case restartScheduled(delay: Duration, restart: Int)
    /// Supervision gave up after `restarts` restarts; the runtime is failed.
    case gaveUp(restarts: Int)
    /// The runtime did not answer a watchdog ping and is being killed.
    case watchdogKill(pid: Int32, error: String)
    /// The runtime is being aborted; `force` restarts it even after a graceful abort.
    case abort(pid: Int32, force: Bool)
    /// The runtime exceeded its memory limit: the kernel OOM-killed (part of) it and the whole sandbox is
    /// being killed; `kills` is the cgroup's OOM kill count. A ``stopped(pid:exit:requested:)`` follows.
    case outOfMemory(pid: Int32, memoryLimit: UInt64?, kills: UInt64)
}

/// Where a runtime's output goes instead of swift-log (``ProvisionerConfiguration/makeOutputSink``).
public protocol RuntimeOutputSink: Sendable {
    /// One line without its newline; `complete` is false when the line was cut at the pump's maximum
    /// length and its next part follows.
    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool)
    /// One process's output stream ended.
    func finish(stream: RuntimeLogWrapper.Stream)
    /// Backpressure: nil when the next line may be passed on now, otherwise how long the pump waits
    /// (not reading the pipe, so the runtime blocks in `write`) before asking again.
    func readDelay() -> Duration?
}

extension RuntimeOutputSink {
    /// No budget: never wait.
    public func readDelay() -> Duration? { nil }
}

/// How one start attempt went, for metrics (``ProvisionerConfiguration/launchObserver``).
public struct LaunchReport: Sendable, Hashable {
    /// Where a start attempt failed.
    public enum Stage: String, Sendable, Hashable, CaseIterable {
        /// Host uid, runtime directory, connector, sandbox spec or cgroup.
        case prepare
        /// The sandbox spawn itself (clone, mounts, seccomp, exec).
        case spawn
        /// The runtime did not connect (in time, or exited first).
        case connect
        /// The RHP handshake failed or reported the wrong version.
        case handshake
        /// The host initializer failed.
        case hostInitializer = "host_initializer"
    }

    public var backend: SandboxBackendKind
    /// Spawn call → the runtime program exec'd (the backend's spawn returned); nil if it never got there.
    public var spawnDuration: Duration?
    /// Start of the attempt → started (handshake and host initializer done); nil unless it started.
    public var provisionDuration: Duration?
    /// nil when the runtime started.
    public var failedStage: Stage?

    public init(backend: SandboxBackendKind, spawnDuration: Duration?, provisionDuration: Duration?, failedStage: Stage?) {
        self.backend = backend
        self.spawnDuration = spawnDuration
        self.provisionDuration = provisionDuration
        self.failedStage = failedStage
    }
}
