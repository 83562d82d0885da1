public import SystemPackage

/// What to run and what the sandbox around it may see: one spec for every backend.
///
/// Mirrors upstream's `process.Config`. Paths in ``BindMount/source`` and ``executable`` are host paths;
/// targets are absolute paths inside the sandbox. Nothing is inherited implicitly: the environment is
/// exactly ``environment``, the filesystem exactly the binds, data files, resolved libraries and the fixed
/// minimal set (`/dev`, `/tmp`, `/entrypoint`, library dirs, `/etc/resolv.conf` with network, `/proc` only
/// with ``mountProc``).
public struct SandboxSpec: Sendable, Hashable {
    /// Host path of the executable; bound read-only at `/entrypoint` inside a sandbox.
    public var executable: FilePath
    /// Arguments after `argv[0]` (which is the executable's path as given).
    public var arguments: [String]
    /// The complete environment of the runtime.
    public var environment: [String: String]
    public var binds: [BindMount]
    /// Bytes that appear as read-only files inside the sandbox.
    public var dataFiles: [DataFile]
    public var standardOutput: OutputDisposition
    public var standardError: OutputDisposition
    /// Share the host network namespace and bind `/etc/resolv.conf` read-only.
    public var allowNetwork: Bool
    public var hostname: String
    /// Mount a fresh `/proc` for the sandbox's pid namespace (off by default: deny unless asked).
    public var mountProc: Bool
    /// Host descriptors the runtime keeps, at the same numbers; every other fd above 2 is closed.
    public var inheritedDescriptors: [FileDescriptor]
    /// Resolve and bind the shared libraries the executable needs (off for static binaries is harmless).
    public var bindSharedLibraries: Bool
    /// Limits the backend applies itself: `RLIMIT_NOFILE` and the size of `/tmp` and `/dev/shm`
    /// (`RLIMIT_CORE` is always 0). cgroup limits are the caller's, see ``cgroupDirectories``.
    public var limits: ProcessLimits
    /// cgroup directories (one per hierarchy, from ``RuntimeCgroup/directories``) the sandbox joins
    /// before it runs any code of the runtime; empty: it stays in the daemon's cgroups.
    public var cgroupDirectories: [FilePath]
    /// The same cgroups' join descriptors, opened ahead (``RuntimeCgroup/placement``); nil: the spawn
    /// opens them from ``cgroupDirectories``. The spawn duplicates them; the owner closes them.
    public var cgroupPlacement: CgroupPlacement?

    public init(
        executable: FilePath,
        arguments: [String] = [],
        environment: [String: String] = [:],
        binds: [BindMount] = [],
        dataFiles: [DataFile] = [],
        standardOutput: OutputDisposition = .pipe,
        standardError: OutputDisposition = .pipe,
        allowNetwork: Bool = false,
        hostname: String = SandboxSpec.defaultHostname,
        mountProc: Bool = false,
        inheritedDescriptors: [FileDescriptor] = [],
        bindSharedLibraries: Bool = true,
        limits: ProcessLimits = ProcessLimits(),
        cgroupDirectories: [FilePath] = [],
        cgroupPlacement: CgroupPlacement? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.binds = binds
        self.dataFiles = dataFiles
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.allowNetwork = allowNetwork
        self.hostname = hostname
        self.mountProc = mountProc
        self.inheritedDescriptors = inheritedDescriptors
        self.bindSharedLibraries = bindSharedLibraries
        self.limits = limits
        self.cgroupDirectories = cgroupDirectories
        self.cgroupPlacement = cgroupPlacement
    }

    /// Upstream's hostname inside the sandbox.
    public static let defaultHostname = "oasis-core"
    /// Where the executable appears inside a sandbox.
    public static let entrypointPath: FilePath = "/entrypoint"
}

/// Per-process limits a backend applies before the runtime's `execve` (no cgroup needed).
public struct ProcessLimits: Sendable, Hashable {
    /// `RLIMIT_NOFILE`, soft and hard; `nil` keeps the daemon's.
    public var openFiles: UInt64?
    /// `size=` of the sandbox's `/tmp` and of its `/dev/shm` (each); `nil`: tmpfs's default (half of RAM).
    /// Not enforceable by the `none` backend (it has no tmpfs of its own).
    public var tmpfsBytes: UInt64?

    public init(openFiles: UInt64? = nil, tmpfsBytes: UInt64? = nil) {
        self.openFiles = openFiles
        self.tmpfsBytes = tmpfsBytes
    }
}

/// A host path made visible inside the sandbox.
public struct BindMount: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Read-only, nosuid, nodev (the default for everything).
        case readOnly = "ro"
        /// Writable, nosuid, nodev.
        case readWrite = "rw"
        /// Writable and device nodes usable (upstream's `--dev-bind`).
        case device = "dev"
    }

    public var source: FilePath
    public var target: FilePath
    public var mode: Mode

    public init(source: FilePath, target: FilePath, mode: Mode = .readOnly) {
        self.source = source
        self.target = target
        self.mode = mode
    }
}

/// Bytes that appear as a read-only file at `target` inside the sandbox.
public struct DataFile: Sendable, Hashable {
    public var target: FilePath
    public var contents: [UInt8]

    public init(target: FilePath, contents: [UInt8]) {
        self.target = target
        self.contents = contents
    }
}

/// Where a runtime's stdout or stderr goes.
public enum OutputDisposition: Sendable, Hashable {
    /// A pipe the caller reads through ``SandboxProcess``'s output streams.
    case pipe
    /// `/dev/null`.
    case discard
    /// The daemon's own descriptor (sandbox-exec passes output through this way).
    case inherit
}

/// Which mechanism builds the sandbox.
public enum SandboxBackendKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Our own C shim: clone with seven namespaces, pivot_root, caps dropped, seccomp. The default.
    case namespaces
    /// `bwrap` from a configured path with the same spec (upstream's behaviour; the parity reference).
    case bubblewrap
    /// No sandbox at all; explicit opt-in only.
    case none
}

/// Host uids/gids handed to sandboxes: one per live sandbox, never host root.
public struct HostIDRange: Sendable, Hashable {
    public var base: UInt32
    public var count: UInt32

    public init(base: UInt32, count: UInt32) {
        precondition(base > 0, "host id range must not include root")
        self.base = base
        self.count = count
    }

    public static let `default` = HostIDRange(base: 200_000, count: 65_536)
}
