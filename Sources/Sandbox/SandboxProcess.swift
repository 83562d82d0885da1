#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Synchronization
public import SystemCalls

/// A started runtime: its pid, its exit as an async value, signals, and its output streams.
///
/// For the `namespaces` backend ``pid`` is the host pid of the sandbox's PID 1 (the reaper); the
/// runtime is pid 2 inside. Signals sent with ``signal(_:)`` reach the reaper, which forwards
/// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the runtime; SIGKILL kills the whole
/// sandbox. ``waitForExit()`` reports the runtime's own status (a signal death stays `.signaled`).
///
/// For `bubblewrap` ``pid`` is bwrap's (its monitor process) and ``runtimePID`` the runtime's: the
/// forwarded signals above go straight to the runtime, any other (SIGKILL) to bwrap, whose death
/// takes the sandbox down. bwrap passes on only the shell code, so a runtime killed by signal N
/// reports `.exited(128 + N)` there (same ``ExitStatus/shellCode``).
///
/// Exit is watched by one shared epoll thread over pidfds (no thread per process); the process is
/// supervised until it exits, whether or not anybody keeps this object.
public final class SandboxProcess: Sendable {
    /// Host pid of the direct child (the reaper for `namespaces`).
    public let pid: Int32
    /// The host uid/gid the sandbox runs as; `nil` for the `none` backend.
    public let hostID: UInt32?
    /// The runtime's stdout when the spec asked for ``OutputDisposition/pipe``.
    public let standardOutput: SandboxOutput?
    /// The runtime's stderr when the spec asked for ``OutputDisposition/pipe``.
    public let standardError: SandboxOutput?
    /// Where the spawn's time went (`namespaces` only).
    public let spawnTimings: SpawnTimings?
    /// Host pid of the runtime itself when the backend knows it (`bubblewrap`; `none`: ``pid``).
    public let runtimePID: Int32?

    private struct State {
        var pidfd: CInt
        /// The runtime's own pidfd when it is not ``pid`` (bubblewrap), else -1.
        var runtimePIDFD: CInt = -1
        var exit: ExitStatus?
        /// Resumed with the status at exit, or with nil when a cancellable wait is cancelled.
        var waiters: [UInt64: @Sendable (ExitStatus?) -> Void] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state: Mutex<State>
    /// The lifeline to the reaper (namespaces only): reaper's status arrives here; closing kills.
    private let controlFD: CInt?
    private let onExit: (@Sendable () -> Void)?

    init(
        pid: Int32, pidfd: CInt, controlFD: CInt?, hostID: UInt32?,
        standardOutput: SandboxOutput?, standardError: SandboxOutput?, spawnTimings: SpawnTimings? = nil,
        runtime: (pid: Int32, pidfd: CInt?)? = nil, onExit: (@Sendable () -> Void)?
    ) {
        self.spawnTimings = spawnTimings
        self.pid = pid
        self.hostID = hostID
        self.controlFD = controlFD
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.onExit = onExit
        self.runtimePID = runtime?.pid
        self.state = Mutex(State(pidfd: pidfd, runtimePIDFD: runtime?.pidfd ?? -1))
    }

    /// Signals a reaper forwards to the runtime (and the bubblewrap backend sends to it directly).
    static let forwardedSignals: Set<CInt> = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Starts watching for exit; called once by the backend right after spawning.
    func startMonitoring() {
        let pidfd = state.withLock { $0.pidfd }
        do {
            try ProcessMonitor.shared.watch(pidfd) { _ in self.reap() }
        } catch {
            // epoll refused the pidfd (cannot happen for a valid one): fall back to a blocking wait.
            DetachedThread.start { self.reap(blocking: true) }
        }
    }

    /// The exit status if the process has exited, without waiting.
    public var exitStatus: ExitStatus? { state.withLock { $0.exit } }

    /// Waits (without blocking a thread) until the runtime exits. Not cancellable.
    public func waitForExit() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let done: ExitStatus? = state.withLock { state in
                if let exit = state.exit { return exit }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = { continuation.resume(returning: $0 ?? .signaled(SIGKILL)) }
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Waits at most `timeout` for the runtime to exit; nil when it is still running then.
    public func waitForExit(within timeout: Duration) async -> ExitStatus? {
        await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await self.waitForExitUnlessCancelled() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Waits until the runtime exits, or returns nil as soon as the calling task is cancelled.
    public func waitForExitUnlessCancelled() async -> ExitStatus? {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ExitStatus?, Never>) in
                let immediate: ExitStatus?? = state.withLock { state in
                    if let exit = state.exit { return .some(exit) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = { continuation.resume(returning: $0) }
                    return .none
                }
                if case .some(let status) = immediate { continuation.resume(returning: status) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?(nil)
        }
    }

    /// Sends `signal` to the process (through its pidfd, immune to pid reuse).
    /// After exit this is a no-op.
    public func signal(_ signal: CInt) throws(SystemCallError) {
        let result: CInt = state.withLock { state in
            guard state.exit == nil, state.pidfd >= 0 else { return 0 }
            if state.runtimePIDFD >= 0, Self.forwardedSignals.contains(signal) {
                return sbx_pidfd_send_signal(state.runtimePIDFD, signal)
            }
            return sbx_pidfd_send_signal(state.pidfd, signal)
        }
        if result == ESRCH { return }
        try checkErrnoValue("pidfd_send_signal(\(pid), \(signal))", result)
    }

    /// SIGKILL: for `namespaces` the reaper dies and the kernel kills everything in the sandbox.
    public func kill() {
        try? signal(SIGKILL)
    }

    /// SIGTERM, then SIGKILL if the runtime is still there after `grace`; returns the exit status.
    public func terminate(grace: Duration) async -> ExitStatus {
        if let exit = exitStatus { return exit }
        try? signal(SIGTERM)
        return await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await self.waitForExit() }
            group.addTask {
                try? await Task.sleep(for: grace)
                return nil
            }
            if let first = await group.next(), let status = first {
                group.cancelAll()
                return status
            }
            self.kill()
            let status = await self.waitForExit()
            group.cancelAll()
            return status
        }
    }

    private func reap(blocking: Bool = false) {
        let pidfd = state.withLock { $0.pidfd }
        var code: CInt = 0
        var value: CInt = 0
        let rc = sbx_waitid_pidfd(pidfd, blocking ? 0 : 1, &code, &value)
        if rc == EAGAIN {  // spurious readiness: watch again
            startMonitoring()
            return
        }
        var status: ExitStatus
        if rc != 0 {
            status = .signaled(SIGKILL)  // already reaped elsewhere (SIGCHLD ignored?): unknowable
        } else if code == CLD_EXITED {
            status = .exited(value)
        } else {
            status = .signaled(value)
        }
        if let controlFD {
            // The reaper writes the runtime's raw wait status just before exiting.
            var raw: Int32 = 0
            let count = withUnsafeMutableBytes(of: &raw) { recv(controlFD, $0.baseAddress, 4, CInt(MSG_DONTWAIT)) }
            if count == 4 { status = ExitStatus(waitStatus: raw) }
            close(controlFD)
        }
        let waiters = state.withLock { state in
            state.exit = status
            close(state.pidfd)
            state.pidfd = -1
            if state.runtimePIDFD >= 0 { close(state.runtimePIDFD) }
            state.runtimePIDFD = -1
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        onExit?()
        for waiter in waiters { waiter(status) }
    }
}

/// Parent-side phases of a `namespaces` spawn, measured by the shim.
public struct SpawnTimings: Sendable, Hashable {
    /// The `clone()` call (namespace creation and the copy of the daemon's page tables).
    public var clone: Duration
    /// Writing the uid/gid maps and releasing the child.
    public var idMaps: Duration
    /// Release until the runtime's `execve` succeeded (mounts, pivot_root, privileges, seccomp).
    public var setup: Duration
    /// The sandbox was created inside its cgroup v2 directory by `clone3(CLONE_INTO_CGROUP)` (no migration).
    public var clonedIntoCgroup: Bool = false

    public var total: Duration { clone + idMaps + setup }
}

/// A minimal detached pthread (the module avoids Foundation).
enum DetachedThread {
    static func start(_ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, box)
        if rc == 0 { pthread_detach(thread) } else { Unmanaged<Box>.fromOpaque(box).release() }
    }
}
