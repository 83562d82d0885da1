#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import SystemCalls
public import Logging
public import SystemPackage

/// The `none` backend: runs the executable directly on the host. No isolation; explicit opt-in only.
///
/// Same process hygiene as a sandbox: the environment is exactly the spec's, every fd above 2 is
/// closed except ``SandboxSpec/inheritedDescriptors``, the signal mask is empty and every
/// disposition is SIG_DFL, and the process starts a new session (`setsid`). The runtime runs as the
/// daemon's own user and sees the host filesystem and network. It dies with the daemon: it is started
/// from ``SpawnThread`` with `PR_SET_PDEATHSIG` = SIGKILL, as upstream starts unsandboxed runtimes.
///
/// Binds cannot be honoured without a mount namespace: they are logged and ignored (the runtime
/// sees host paths as they are). Data files are written as real read-only (0444) files: under
/// ``dataDirectory`` joined with their target (`/etc/x` → `<dataDirectory>/etc/x`) when one is
/// configured, else at their literal target paths (existing files are replaced).
public final class UnsandboxedBackend: SandboxBackend {
    public let kind = SandboxBackendKind.none
    /// Where data files go; `nil` writes them at their literal targets.
    public let dataDirectory: FilePath?
    private let logger: Logger

    public init(dataDirectory: FilePath? = nil, logger: Logger) {
        self.dataDirectory = dataDirectory
        self.logger = logger
    }

    /// Where a data file with this in-sandbox target is written on the host.
    public func hostPath(forDataFile target: FilePath) -> FilePath {
        guard let dataDirectory else { return target }
        return dataDirectory.appending(target.components)
    }

    /// Runs as the caller: `hostID` is not used (pass nil).
    public func spawn(_ spec: SandboxSpec, hostID: consuming HostIDLease?) async throws(SandboxError) -> SandboxProcess {
        try spawnBlocking(spec)
    }

    public func spawnBlocking(_ spec: SandboxSpec) throws(SandboxError) -> SandboxProcess {
        if spec.limits.tmpfsBytes != nil {
            // Never silently unenforced: without a mount namespace there is no /tmp of its own to size.
            throw SandboxError(.invalidSpec, "the none backend cannot limit tmpfs sizes (it has no tmpfs of its own)")
        }
        for bind in spec.binds where bind.source != bind.target {
            logger.warning("none backend: bind ignored", metadata: ["source": "\(bind.source)", "target": "\(bind.target)"])
        }
        for file in spec.dataFiles {
            try SpawnSupport.validateTarget(file.target, what: "data file")
            try Self.writeDataFile(file.contents, to: hostPath(forDataFile: file.target))
        }
        return try SpawnThread.shared.run { () throws(SandboxError) in
            try Self.launch(spec, parentDeathSignal: SIGKILL)
        }
    }

    /// Starts `spec.executable` directly (see ``PlainChild/start(_:ids:moves:)``) and supervises it;
    /// `onExit` runs once it has been reaped.
    static func launch(
        _ spec: SandboxSpec, ids: (uid: UInt32, gid: UInt32)? = nil, hostID: UInt32? = nil,
        parentDeathSignal: Int32? = nil, onExit: (@Sendable () -> Void)? = nil
    ) throws(SandboxError) -> SandboxProcess {
        let child = try PlainChild.start(spec, ids: ids, parentDeathSignal: parentDeathSignal)
        let process = SandboxProcess(
            pid: child.pid, pidfd: child.pidfd, controlFD: nil, hostID: hostID,
            standardOutput: child.stdoutReader.map { SandboxOutput(takingOwnershipOf: $0) },
            standardError: child.stderrReader.map { SandboxOutput(takingOwnershipOf: $0) },
            runtime: (pid: child.pid, pidfd: nil), onExit: onExit
        )
        process.startMonitoring()
        return process
    }

    /// Writes `bytes` to `path` (parents created 0755) as a 0444 file, atomically replacing it.
    static func writeDataFile(_ bytes: [UInt8], to path: FilePath) throws(SandboxError) {
        func fail(_ what: String, _ code: Int32) -> SandboxError {
            SandboxError(.setupFailed, "\(what) \(path)", stage: "data-file", errno: Errno(rawValue: code))
        }
        var parent = FilePath("/")
        for component in path.removingLastComponent().components {
            parent.append(component)
            if mkdir(parent.string, 0o755) != 0 && errno != EEXIST { throw fail("cannot create the parent of", errno) }
        }
        let temporary = path.string + ".sbx-tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o444)
        guard fd >= 0 else { throw fail("cannot create", errno) }
        var offset = 0
        while offset < bytes.count {
            let written = retryingEINTR { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) } }
            guard written > 0 else {
                let code = errno
                close(fd)
                unlink(temporary)
                throw fail("cannot write", code)
            }
            offset += written
        }
        fchmod(fd, 0o444)
        close(fd)
        guard rename(temporary, path.string) == 0 else {
            let code = errno
            unlink(temporary)
            throw fail("cannot place", code)
        }
    }
}
