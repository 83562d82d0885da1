#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
public import Logging
public import SystemPackage

/// The `bubblewrap` backend: runs `bwrap` with the same spec, upstream's way; the parity reference.
///
/// bwrap runs as the sandbox's own unprivileged host uid/gid from ``hostIDs`` (supplementary groups
/// dropped), never as root: with `--unshare-user`, a root bwrap would map the sandbox to host root.
/// Unprivileged, it maps that id into its user namespace, so the runtime sees the same uid/gid number
/// as the `namespaces` backend gives it. Options go through `--args FD`, the shared seccomp program
/// (``SeccompFilter/shared``) through `--seccomp FD` and data files through `--ro-bind-data FD`,
/// written after bwrap started (upstream's order); the environment only through `--clearenv` and
/// `--setenv` (bwrap itself starts with an empty one).
///
/// ``spawnBlocking(_:hostID:)`` returns once the runtime's `execve` succeeded, like every backend:
/// it waits (within ``setupTimeout``) until bwrap has read the seccomp program — its last step before
/// starting the runtime — and then until the runtime process (found under the sandbox's PID 1, named
/// by `--json-status-fd`) is no longer bwrap. bwrap dying first is a setup failure, told apart from a
/// runtime that ran and exited by the `exit-code` line bwrap writes only after a successful `execve`;
/// bwrap's own `bwrap: …` message becomes the error's stage and errno when stderr is a pipe.
///
/// bwrap is started from ``SpawnThread``: its `--die-with-parent` is a parent-death signal bound to
/// the spawning thread. The differences from `namespaces` are listed in the Sandbox documentation
/// ("Parity with bubblewrap").
public final class BubblewrapBackend: SandboxBackend {
    public let kind = SandboxBackendKind.bubblewrap
    /// The bwrap executable (upstream's `SandboxBinaryPath`).
    public let bwrapPath: FilePath
    /// Host ids in use; share it with the other backends so no two sandboxes get the same id.
    public let hostIDs: HostIDAllocator
    /// Deadline from starting bwrap to the runtime's `execve`.
    public let setupTimeout: Duration
    private let libraries: (any SharedLibraryProvider)?
    private let logger: Logger

    public init(
        bwrapPath: FilePath = "/usr/bin/bwrap", libraries: (any SharedLibraryProvider)? = SharedLibraryResolver(),
        hostIDs: HostIDAllocator, setupTimeout: Duration = .seconds(5), logger: Logger
    ) {
        self.bwrapPath = bwrapPath
        self.libraries = libraries
        self.hostIDs = hostIDs
        self.setupTimeout = setupTimeout
        self.logger = logger
    }

    /// Runs the blocking bwrap startup (payload writes, status pipe, the /proc scan that confirms the
    /// runtime's `execve`) on a thread of its own and awaits it, so no cooperative-pool thread blocks.
    public func spawn(_ spec: SandboxSpec, hostID lease: consuming HostIDLease?) async throws(SandboxError) -> SandboxProcess {
        let hostID = HostIDLease.handOver(lease)  // released by the sandbox, or by the startup on failure
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<SandboxProcess, SandboxError>, Never>) in
            DetachedThread.start { [self] in
                do throws(SandboxError) {
                    continuation.resume(returning: .success(try start(spec, reservedID: hostID)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Takes a host id ahead of a spawn (to `chown` the runtime's directory to it); pass it to
    /// ``spawnBlocking(_:hostID:)``, which then owns it.
    public func reserveHostID() throws(SandboxError) -> HostIDLease {
        try hostIDs.lease(nil)
    }

    /// ``spawn(_:)`` without the async hop.
    ///
    /// `hostID`: an id from ``reserveHostID()``; the spawn takes it over (released once bwrap has been
    /// reaped, or when the spawn fails). `nil` takes a fresh one.
    public func spawnBlocking(_ spec: SandboxSpec, hostID lease: consuming HostIDLease? = nil) throws(SandboxError) -> SandboxProcess {
        try start(spec, reservedID: HostIDLease.handOver(lease))
    }

    /// The startup; `reserved` is an id handed over from a lease (released here on failure).
    private func start(_ spec: SandboxSpec, reservedID reserved: UInt32?) throws(SandboxError) -> SandboxProcess {
        var reservedID = reserved
        defer { if let reservedID { hostIDs.release(reservedID) } }
        try checkBubblewrap()
        let filter = try SeccompFilter.shared.get()
        let prepared = try SpawnPreparation(spec, libraries: libraries)
        let executable = prepared.executable
        let inherited = prepared.inheritedDescriptors
        let libraryLayout = prepared.libraries
        let binds = try Self.resolvedBinds(spec.binds)
        let resolvConf: String? = if case .success(let path) = SpawnSupport.realPath("/etc/resolv.conf") { path } else { nil }
        for file in spec.dataFiles { try SpawnSupport.validateTarget(file.target, what: "data file") }
        for link in libraryLayout.symbolicLinks { try SpawnSupport.validateTarget(link.path, what: "symlink") }

        let hostID: UInt32
        if let reservedID { hostID = reservedID } else { hostID = try hostIDs.reserve() }
        reservedID = nil
        var handedOver = false
        defer { if !handedOver { hostIDs.release(hostID) } }
        if let denied = SpawnSupport.executeDenied(executable, uid: hostID, gid: hostID) {
            throw SandboxError.exec(denied, path: spec.executable.string)
        }

        let invocation = BubblewrapInvocation(
            spec: spec, executable: executable, binds: binds, resolvConf: resolvConf, libraries: libraryLayout,
            reserved: Set(inherited))
        let channels = try BubblewrapChannels(invocation)
        let bwrapSpec = SandboxSpec(
            executable: bwrapPath, arguments: invocation.commandLine, environment: [:],
            standardOutput: spec.standardOutput, standardError: spec.standardError,
            inheritedDescriptors: spec.inheritedDescriptors, bindSharedLibraries: false,
            limits: ProcessLimits(openFiles: spec.limits.openFiles), cgroupDirectories: spec.cgroupDirectories,
            cgroupPlacement: spec.cgroupPlacement)
        let moves = channels.moves
        let deadline = ContinuousClock.now.advanced(by: setupTimeout)
        let child: PlainChild
        do {
            child = try SpawnThread.shared.run { () throws(SandboxError) in
                try PlainChild.start(bwrapSpec, ids: (uid: hostID, gid: hostID), moves: moves)
            }
        } catch where error.stage == "exec" {
            throw SandboxError(.backendUnavailable, "cannot execute bwrap at \(bwrapPath) as host id \(hostID)",
                               stage: "bwrap", errno: error.errno)
        }
        channels.closeBubblewrapEnds()

        let startup = BubblewrapStartup(child: child, channels: channels, deadline: deadline, hostID: hostID)
        let runtime: ProcessStat?
        do {
            runtime = try startup.run(
                arguments: invocation.argumentsPayload, dataFiles: spec.dataFiles, seccomp: filter.program)
        } catch {
            let failure = startup.abandon(error, executable: spec.executable.string)
            logger.debug("bwrap sandbox failed", metadata: ["error": "\(failure)", "host-id": "\(hostID)"])
            throw failure
        }

        handedOver = true
        let allocator = hostIDs
        let status = DescriptorBox(channels.takeStatusDescriptor())
        var runtimePIDFD: CInt = -1
        if let runtime, sbx_pidfd_open(runtime.pid, &runtimePIDFD) != 0 { runtimePIDFD = -1 }
        let process = SandboxProcess(
            pid: child.pid, pidfd: child.pidfd, controlFD: nil, hostID: hostID,
            standardOutput: child.stdoutReader.map { SandboxOutput(takingOwnershipOf: $0) },
            standardError: child.stderrReader.map { SandboxOutput(takingOwnershipOf: $0) },
            runtime: runtime.map { (pid: $0.pid, pidfd: runtimePIDFD >= 0 ? runtimePIDFD : nil) },
            onExit: {
                status.closeOnce()
                allocator.release(hostID)
            }
        )
        process.startMonitoring()
        logger.debug("bwrap sandbox started", metadata: [
            "bwrap-pid": "\(child.pid)", "runtime-pid": "\(runtime.map { "\($0.pid)" } ?? "-")",
            "host-id": "\(hostID)", "executable": "\(executable)",
        ])
        return process
    }

    /// A clear error unless ``bwrapPath`` is an executable file (others-executable: bwrap runs as a
    /// sandbox's unprivileged id).
    private func checkBubblewrap() throws(SandboxError) {
        var info = stat()
        guard stat(bwrapPath.string, &info) == 0 else {
            throw SandboxError(.backendUnavailable, "bwrap not found at \(bwrapPath)", stage: "bwrap", errno: Errno(rawValue: errno))
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_mode & S_IXOTH != 0 else {
            throw SandboxError(.backendUnavailable, "\(bwrapPath) is not a file everybody may execute", stage: "bwrap",
                               errno: .permissionDenied)
        }
    }

    /// The spec's binds with sources resolved on the host (as the namespaces backend does).
    private static func resolvedBinds(_ binds: [BindMount]) throws(SandboxError) -> [BindMount] {
        var resolved: [BindMount] = []
        for bind in binds {
            try SpawnSupport.validateTarget(bind.target, what: "bind")
            switch SpawnSupport.realPath(bind.source) {
            case .success(let source): resolved.append(BindMount(source: FilePath(source), target: bind.target, mode: bind.mode))
            case .failure(let errno):
                throw SandboxError(.setupFailed, "bind source \(bind.source) for \(bind.target) is not accessible",
                                   stage: "bind-source", errno: errno)
            }
        }
        return resolved
    }
}
