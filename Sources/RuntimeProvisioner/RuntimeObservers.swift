public import Sandbox

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
