#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
public import Logging
import Synchronization
import SystemPackage

/// The `namespaces` backend: our C shim, no external sandbox binary.
///
/// Each sandbox gets new user, mount, pid, uts, ipc, cgroup (and, unless
/// ``SandboxSpec/allowNetwork``, network) namespaces and its own host uid/gid from
/// ``Configuration/hostIDs``. Inside, the runtime sees the same uid/gid number as on the host
/// (bubblewrap's default mapping) unless ``Configuration/sandboxUID``/``Configuration/sandboxGID``
/// fix one. The root is a tmpfs, read-only once built, holding exactly: the spec's binds and data
/// files, `/dev` (null zero full random urandom tty, devpts, ptmx, shm; fd/stdin/stdout/stderr links
/// only with `/proc`), `/tmp` (tmpfs), `/entrypoint` (read-only), the library binds from the
/// ``SharedLibraryProvider``, `/etc/resolv.conf` with network and `/proc` with ``SandboxSpec/mountProc``.
/// PID 1 is a reaper in C; the runtime is pid 2 and runs with no capabilities (bounding set
/// included), no_new_privs and ``SeccompFilter/shared``. The sandbox dies with the daemon: PID 1
/// holds a lifeline socket whose other end only the daemon has.
public final class NamespaceSandbox: SandboxBackend {
    public struct Configuration: Sendable {
        public var hostIDs: HostIDRange
        /// The uid the runtime sees; `nil`: the same number as its host uid (bubblewrap's default).
        public var sandboxUID: UInt32?
        /// The gid the runtime sees; `nil`: the same number as its host gid.
        public var sandboxGID: UInt32?
        /// Remount the root tmpfs read-only after building it (deny by default).
        public var readOnlyRoot: Bool
        /// Deadline from release to the runtime's execve.
        public var setupTimeout: Duration
        /// The `sandboxd-spawner` executable; `nil`: the one next to the running executable.
        public var spawnerExecutable: String?
        /// Network namespaces the spawner keeps ready, each with `lo` up, made by a thread of its own and each
        /// given to one sandbox only (0 disables the pool; clamped to ``netnsPoolLimit``). A sandbox cloned
        /// into a pooled one saves creating it on the spawn path; when the pool is empty it gets a fresh one
        /// as without the pool. A pooled namespace belongs to the host's user namespace: the sandbox has no
        /// CAP_NET_ADMIN over it (its runtime has no capabilities either way).
        public var netnsPool: Int

        /// The default ``netnsPool``.
        public static let defaultNetnsPool = 4
        /// The largest ``netnsPool`` (the spawner's `SBX_NETNS_POOL_MAX`).
        public static let netnsPoolLimit = 64

        public init(
            hostIDs: HostIDRange = .default, sandboxUID: UInt32? = nil, sandboxGID: UInt32? = nil,
            readOnlyRoot: Bool = true, setupTimeout: Duration = .seconds(5), spawnerExecutable: String? = nil,
            netnsPool: Int = Configuration.defaultNetnsPool
        ) {
            self.spawnerExecutable = spawnerExecutable
            self.netnsPool = netnsPool
            self.hostIDs = hostIDs
            self.sandboxUID = sandboxUID
            self.sandboxGID = sandboxGID
            self.readOnlyRoot = readOnlyRoot
            self.setupTimeout = setupTimeout
        }
    }

    public let kind = SandboxBackendKind.namespaces
    public let configuration: Configuration
    /// Host ids in use; shared with anything else that must not reuse them.
    public let hostIDs: HostIDAllocator
    private let libraries: (any SharedLibraryProvider)?
    private let logger: Logger

    public init(
        configuration: Configuration = Configuration(),
        libraries: (any SharedLibraryProvider)? = SharedLibraryResolver(),
        hostIDs: HostIDAllocator? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.hostIDs = hostIDs ?? HostIDAllocator(range: configuration.hostIDs)
        self.libraries = libraries
        self.logger = logger
    }

    public func spawn(_ spec: SandboxSpec, hostID reserved: consuming HostIDLease?) async throws(SandboxError) -> SandboxProcess {
        var lease = try hostIDs.lease(reserved)
        let hostID = lease.id
        let filter = try SeccompFilter.shared.get()
        let prepared = try SpawnPreparation(spec, libraries: libraries)
        let executable = prepared.executable
        let environment = prepared.environment
        let keep = prepared.inheritedDescriptors
        let libraryMounts = prepared.libraries

        let sandboxUID = configuration.sandboxUID ?? hostID
        let sandboxGID = configuration.sandboxGID ?? hostID

        // Descriptors in `bag` stay open until the helper's reply: the client sends them before that.
        var bag = DescriptorBag()
        let arena = CStringArena()
        var plan = MountPlan(arena: arena)
        try plan.build(spec: spec, executable: executable, libraries: libraryMounts, bag: &bag)
        let (stdinFD, stdoutFD, stderrFD, stdoutReader, stderrReader) = try SpawnSupport.stdio(spec, bag: &bag)
        if let stdoutReader { bag.forget(stdoutReader) }
        if let stderrReader { bag.forget(stderrReader) }
        var readers = DescriptorBag()
        if let stdoutReader { _ = readers.add(stdoutReader) }
        if let stderrReader { _ = readers.add(stderrReader) }
        let (cgroupFDs, cloneIntoCgroup, cgroupSelfJoin) = try SpawnSupport.cgroupJoin(spec, bag: &bag)

        var config = sbx_sandbox_config()
        config.nofile_limit = spec.limits.openFiles ?? 0
        config.clone_cgroup_fd = cloneIntoCgroup
        config.exec_path = UnsafePointer(arena.string(SandboxSpec.entrypointPath.string))
        config.argv = UnsafePointer(arena.array([spec.executable.string] + spec.arguments))
        config.envp = UnsafePointer(arena.array(environment))
        config.base_options = UnsafePointer(arena.string("mode=0755,size=64k"))
        config.root_options = UnsafePointer(arena.string("mode=0755"))
        config.hostname = UnsafePointer(arena.string(spec.hostname))
        config.host_uid = hostID
        config.host_gid = hostID
        config.sandbox_uid = sandboxUID
        config.sandbox_gid = sandboxGID
        config.flags = (spec.allowNetwork ? 0 : SBX_FLAG_NEW_NET) | (configuration.readOnlyRoot ? SBX_FLAG_READONLY_ROOT : 0)
            | (cgroupSelfJoin ? SBX_FLAG_CGROUP_SELF : 0)
        config.stdin_fd = stdinFD
        config.stdout_fd = stdoutFD
        config.stderr_fd = stderrFD
        config.last_cap = SpawnSupport.lastCapability
        let (seconds, attoseconds) = configuration.setupTimeout.components
        config.timeout_ms = Swift.max(1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))

        let client = SpawnerClient.shared(executable: configuration.spawnerExecutable ?? SpawnerClient.defaultExecutable,
                                          netnsPool: configuration.netnsPool, logger: logger)
        let requestID = client.nextRequestID()
        // Not zero-filled: the encoder writes every byte up to `length`, and untouched pages cost nothing.
        var message = [UInt8](unsafeUninitializedCapacity: Int(SBX_WIRE_MAX_MESSAGE)) { _, count in
            count = Int(SBX_WIRE_MAX_MESSAGE)
        }
        var fds = [Int32](repeating: -1, count: Int(SBX_WIRE_MAX_FDS))
        var length = 0, fdCount = 0
        let rc = filter.program.withUnsafeBytes { bpf in
            keep.withUnsafeBufferPointer { keepBuffer in
                cgroupFDs.withUnsafeBufferPointer { cgroupBuffer in
                plan.ops.withUnsafeMutableBufferPointer { ops in
                    config.cgroup_fds = cgroupBuffer.baseAddress
                    config.cgroup_count = cgroupBuffer.count
                    config.bpf = bpf.baseAddress
                    config.bpf_count = UInt16(filter.instructionCount)
                    config.keep_fds = keepBuffer.baseAddress
                    config.keep_count = keepBuffer.count
                    config.ops = ops.baseAddress
                    config.op_count = ops.count
                    let messageCount = message.count, fdCapacity = fds.count
                    return message.withUnsafeMutableBytes { messageBytes in
                        sbx_wire_encode(&config, requestID, messageBytes.baseAddress, messageCount, &length,
                                        &fds, fdCapacity, &fdCount)
                    }
                }
                }
            }
        }
        withExtendedLifetime(arena) {}
        guard rc == 0 else {
            throw SandboxError(.invalidSpec, "the sandbox plan exceeds the spawner's bounds", stage: "spawner-request",
                               errno: Errno(rawValue: rc))
        }
        // Only the encoded bytes wait in the queue, not the whole encoding buffer.
        let reply = await client.send(id: requestID, message: Array(message[..<length]), fds: Array(fds[0..<fdCount]))
        // The helper has the descriptors (or the request failed): `bag` closes the daemon's copies.
        _ = consume bag
        let result: sbx_spawn_result
        let child: ChildIdentity?
        switch reply {
        case .failure(let error):
            // The spawner's orphaned clone, if any, is already reaped: the lease may go with the error.
            logger.debug("sandbox spawn failed", metadata: ["error": "\(error)", "host-id": "\(hostID)"])
            throw error
        case .success(let value):
            result = value.result
            child = value.child
        }
        guard result.stage == Int32(SBX_STAGE_NONE.rawValue), result.pidfd >= 0, result.control_fd >= 0 else {
            if result.control_fd >= 0 { close(result.control_fd) }
            if result.pidfd >= 0 {
                // The killed child runs as the host id until it is reaped: the id goes back only then.
                let id = lease.take()
                let allocator = hostIDs
                Self.reapAbandoned(pidfd: result.pidfd) {
                    if let child { client.reaped(child) }
                    allocator.release(id)
                }
            }
            var failed = result
            if failed.error == 0 { failed.error = EIO }
            let error = SandboxError.fromShim(failed, path: spec.executable.string) { plan.describe($0) }
            logger.debug("sandbox spawn failed", metadata: ["error": "\(error)", "host-id": "\(hostID)"])
            throw error
        }
        if let stdoutReader { readers.forget(stdoutReader) }
        if let stderrReader { readers.forget(stderrReader) }
        _ = lease.take()  // the process releases it once reaped
        let allocator = hostIDs
        let process = SandboxProcess(
            pid: result.pid, pidfd: result.pidfd, controlFD: result.control_fd, hostID: hostID,
            standardOutput: stdoutReader.map { SandboxOutput(takingOwnershipOf: $0) },
            standardError: stderrReader.map { SandboxOutput(takingOwnershipOf: $0) },
            spawnTimings: SpawnTimings(clone: .nanoseconds(result.clone_ns), idMaps: .nanoseconds(result.maps_ns),
                                       setup: .nanoseconds(result.setup_ns),
                                       clonedIntoCgroup: result.cloned_into_cgroup != 0),
            onExit: {
                if let child { client.reaped(child) }
                allocator.release(hostID)
            }
        )
        process.startMonitoring()
        logger.debug("sandbox started", metadata: ["pid": "\(result.pid)", "host-id": "\(hostID)", "executable": "\(executable)"])
        return process
    }

    /// Leases a host id ahead of a spawn, e.g. to `chown` the runtime's writable directory (and its
    /// `host.sock`) to it; pass it to ``spawn(_:hostID:)``, which consumes it.
    public func reserveHostID() throws(SandboxError) -> HostIDLease {
        try hostIDs.lease(nil)
    }

    /// ``spawn(_:hostID:)`` for synchronous tools (sandbox-exec, bench-spawn): blocks the calling thread
    /// until the spawner answers. Never call it from the cooperative pool.
    public func spawnBlocking(_ spec: SandboxSpec, hostID lease: consuming HostIDLease? = nil) throws(SandboxError) -> SandboxProcess {
        let done = Semaphore()
        let outcome = Mutex<Result<SandboxProcess, SandboxError>?>(nil)
        // A noncopyable lease cannot be captured by the task: carry the number, re-lease it there.
        let hostID = HostIDLease.handOver(lease)
        let allocator = hostIDs
        Task.detached { [self] in
            let hostID = hostID.map { HostIDLease(id: $0, allocator: allocator) }
            let result: Result<SandboxProcess, SandboxError>
            do throws(SandboxError) { result = .success(try await spawn(spec, hostID: hostID)) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try outcome.withLock { $0! }.get()
    }

    /// A child the spawner started and killed after a failed setup: the daemon is its parent (CLONE_PARENT),
    /// so it reaps it, on the monitor thread, once it has exited; `reaped` runs after the reap.
    static func reapAbandoned(pidfd: CInt, reaped: @escaping @Sendable () -> Void = {}) {
        let reap: @Sendable (UInt32) -> Void = { _ in
            var code: CInt = 0, status: CInt = 0
            _ = sbx_waitid_pidfd(pidfd, 0, &code, &status)
            close(pidfd)
            reaped()
        }
        do { try ProcessMonitor.shared.watch(pidfd, handler: reap) } catch { reap(0) }
    }
}

/// The ordered list of mount operations for the shim, plus a description of each for errors.
struct MountPlan {
    let arena: CStringArena
    var ops: [sbx_mount_op] = []
    var descriptions: [String] = []

    init(arena: CStringArena) { self.arena = arena }

    func describe(_ index: Int) -> String {
        index < descriptions.count ? descriptions[index] : "mount op \(index)"
    }

    static let readOnly = SBX_ATTR_RDONLY | SBX_ATTR_NOSUID | SBX_ATTR_NODEV

    private mutating func add(
        _ kind: sbx_op_kind, target: String, source: String? = nil, flags: UInt32 = 0, mode: UInt32 = 0,
        fd: Int32 = -1, options: String? = nil, description: String
    ) {
        var op = sbx_mount_op()
        op.kind = Int32(kind.rawValue)
        op.flags = flags
        op.mode = mode
        op.fd = fd
        op.source = source.map { UnsafePointer(arena.string($0)) }
        op.target = arena.string(SBX_NEW_ROOT + target)
        op.options = options.map { UnsafePointer(arena.string($0)) }
        ops.append(op)
        descriptions.append(description)
    }

    private mutating func bind(hostPath: String, target: String, flags: UInt32, optional: Bool = false, what: String) {
        add(SBX_OP_BIND, target: target, source: SBX_OLD_ROOT + hostPath,
            flags: flags | (optional ? SBX_OP_OPTIONAL : 0), description: "\(what) \(hostPath) → \(target)")
    }

    /// Resolves a bind source on the host (symlinks included) before the clone.
    private static func source(_ path: FilePath, target: FilePath, what: String) throws(SandboxError) -> String {
        switch SpawnSupport.realPath(path) {
        case .success(let resolved): return resolved
        case .failure(let errno):
            throw SandboxError(.setupFailed, "bind source \(path) for \(target) is not accessible", stage: "bind-source",
                               errno: errno, op: "\(what) \(path) → \(target)")
        }
    }

    mutating func build(
        spec: SandboxSpec, executable: String, libraries: SharedLibraryLayout, bag: inout DescriptorBag
    ) throws(SandboxError) {
        let devFlags = SBX_ATTR_NOSUID | SBX_ATTR_NOEXEC
        add(SBX_OP_TMPFS, target: "/dev", flags: devFlags, options: "mode=0755", description: "tmpfs /dev")
        for node in ["null", "zero", "full", "random", "urandom", "tty"] {
            bind(hostPath: "/dev/" + node, target: "/dev/" + node, flags: devFlags, what: "device")
        }
        add(SBX_OP_DEVPTS, target: "/dev/pts", flags: devFlags, options: "newinstance,ptmxmode=0666,mode=620",
            description: "devpts /dev/pts")
        add(SBX_OP_SYMLINK, target: "/dev/ptmx", source: "pts/ptmx", description: "symlink /dev/ptmx")
        add(SBX_OP_TMPFS, target: "/dev/shm", flags: SBX_ATTR_NOSUID | SBX_ATTR_NODEV,
            options: SpawnSupport.tmpfsOptions("mode=1777", spec.limits),
            description: "tmpfs /dev/shm")
        if spec.mountProc {
            for (name, destination) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                                        ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
                add(SBX_OP_SYMLINK, target: "/dev/" + name, source: destination, description: "symlink /dev/\(name)")
            }
        }
        if spec.mountProc {
            add(SBX_OP_PROC, target: "/proc", flags: SBX_ATTR_NOSUID | SBX_ATTR_NODEV | SBX_ATTR_NOEXEC,
                description: "proc /proc")
        }
        add(SBX_OP_TMPFS, target: "/tmp", flags: SBX_ATTR_NOSUID | SBX_ATTR_NODEV,
            options: SpawnSupport.tmpfsOptions("mode=1777", spec.limits),
            description: "tmpfs /tmp")
        bind(hostPath: executable, target: SandboxSpec.entrypointPath.string, flags: Self.readOnly, what: "entrypoint")
        if spec.allowNetwork, case .success(let resolv) = SpawnSupport.realPath("/etc/resolv.conf") {
            bind(hostPath: resolv, target: "/etc/resolv.conf", flags: Self.readOnly, optional: true, what: "resolv.conf")
        }
        for mount in spec.binds {
            try SpawnSupport.validateTarget(mount.target, what: "bind")
            let flags: UInt32 = switch mount.mode {
            case .readOnly: Self.readOnly
            case .readWrite: SBX_ATTR_NOSUID | SBX_ATTR_NODEV
            case .device: SBX_ATTR_NOSUID
            }
            let what = "bind (\(mount.mode.rawValue))"
            bind(hostPath: try Self.source(mount.source, target: mount.target, what: what), target: mount.target.string,
                 flags: flags, what: what)
        }
        for mount in libraries.binds {
            try SpawnSupport.validateTarget(mount.target, what: "library")
            bind(hostPath: try Self.source(mount.source, target: mount.target, what: "library"),
                 target: mount.target.string, flags: Self.readOnly, what: "library")
        }
        for file in spec.dataFiles {
            try SpawnSupport.validateTarget(file.target, what: "data file")
            var fd: CInt = -1
            let rc = file.contents.withUnsafeBytes { sbx_sealed_memfd($0.baseAddress, $0.count, &fd) }
            guard rc == 0 else {
                throw SandboxError(.setupFailed, "cannot stage data for \(file.target)", stage: "data-file",
                                   errno: Errno(rawValue: rc))
            }
            add(SBX_OP_DATA, target: file.target.string, flags: Self.readOnly, mode: 0o444, fd: bag.add(fd),
                description: "data file \(file.target)")
        }
        for link in libraries.symbolicLinks {
            try SpawnSupport.validateTarget(link.path, what: "symlink")
            add(SBX_OP_SYMLINK, target: link.path.string, source: link.destination.string,
                description: "symlink \(link.path) → \(link.destination)")
        }
        // /dev itself read-only once populated, after the spec's own device binds (e.g. SGX nodes);
        // its submounts (pts, shm, binds) keep their own flags.
        add(SBX_OP_SETATTR, target: "/dev", flags: SBX_ATTR_RDONLY | devFlags, description: "read-only /dev")
    }
}
