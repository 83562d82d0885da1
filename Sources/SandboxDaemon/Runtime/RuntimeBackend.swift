import Foundation
public import RuntimeHostProtocol
public import RuntimeProvisioner
public import Sandbox

/// The one seam between the daemon and the provisioner: everything the registry needs to run a runtime.
///
/// The daemon's HTTP, state and config code only sees this protocol, so it is testable with a fake. The
/// production implementation (``ProvisionerBackend``) maps ``RuntimeSpecification`` to the provisioner's
/// `RuntimeSpec` and wraps its `Runtime`.
public protocol RuntimeBackend: Sendable {
    /// Creates (but does not start) a supervised runtime for a validated spec. `onNotice` is told each of
    /// its `RuntimeNotice`s synchronously and in order (so a `stopped` has been told when ``ManagedRuntime/stop()``
    /// returns); it must not block.
    func makeRuntime(
        _ spec: RuntimeSpecification, onNotice: @escaping @Sendable (RuntimeNotice) -> Void
    ) throws -> any ManagedRuntime
    /// Where the runtimes' output is kept as files, if anywhere.
    var logFiles: RuntimeLogFiles? { get }
    /// What the host can enforce and the configured defaults (`GET /v1/health`, `limit_unavailable`).
    var limitSupport: LimitSupport { get }
    /// Runs once at start before any runtime is made: e.g. removes cgroups a killed daemon left behind.
    func prepare() async
    /// Runs once at exit after every runtime stopped: e.g. removes the daemon's empty cgroup directories.
    func finish() async
}

extension RuntimeBackend {
    public var logFiles: RuntimeLogFiles? { nil }
    public var limitSupport: LimitSupport { .unrestricted }
    public func prepare() async {}
    public func finish() async {}
}

/// One supervised runtime, as the registry drives it: the provisioner's `Runtime`, or a test double.
public protocol ManagedRuntime: Sendable {
    /// Starts supervision; idempotent.
    func start()
    /// Stops the runtime and waits until its process is gone and its last notice was told; idempotent.
    func stop() async
    /// Aborts the running runtime (graceful RHP abort unless `force`), which then restarts.
    func abort(force: Bool) async throws
    /// ``abort(force:)`` with a deadline for the caller: throws ``DaemonError/Code/timeout`` after it.
    func abort(force: Bool, timeout: Duration?) async throws
    /// One RHP ping round trip.
    func ping(timeout: Duration) async throws -> Duration
    var status: RuntimeStatus { get }
    /// `status.state` alone (state counts read it for every runtime).
    var currentState: RuntimeState { get }
    /// What the running incarnation has consumed (read from its cgroup when asked); nil without one.
    func usage() -> ResourceUsage?
    /// Upstream's `Call`: waits (with backoff) until the runtime is ready, then sends `body`; throws
    /// ``DaemonError`` (`runtime_error`, `timeout`, `not_running`, …).
    func call(_ body: Body, timeout: Duration) async throws(DaemonError) -> Body
    /// Sends `body` to the running incarnation at once (an attached host's requests).
    func forward(_ body: Body, timeout: Duration?) async throws(DaemonError) -> Body
    /// The running incarnation's handshake answer; nil while not running.
    var runtimeInfo: RuntimeInfoResponse? { get }
    /// Makes `handler` answer the runtime's own requests until the returned detach closure runs.
    func attachHost(_ handler: any Handler) throws(DaemonError) -> @Sendable () -> Void
}

extension ManagedRuntime {
    public func usage() -> ResourceUsage? { nil }
    public func call(_ body: Body, timeout: Duration) async throws(DaemonError) -> Body {
        throw DaemonError(.notRunning, "this runtime cannot take calls")
    }
    public func forward(_ body: Body, timeout: Duration?) async throws(DaemonError) -> Body {
        throw DaemonError(.notRunning, "this runtime cannot take calls")
    }
    public var runtimeInfo: RuntimeInfoResponse? { nil }
    public func attachHost(_ handler: any Handler) throws(DaemonError) -> @Sendable () -> Void {
        throw DaemonError(.notRunning, "this runtime cannot be attached to")
    }
}

extension ManagedRuntime {
    /// Races ``abort(force:)`` against the deadline (the abort itself goes on after it).
    public func abort(force: Bool, timeout: Duration?) async throws {
        guard let timeout else { return try await abort(force: force) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await abort(force: force) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DaemonError(.timeout, "abort did not finish within \(timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

extension ManagedRuntime {
    public var currentState: RuntimeState { status.state }
}
