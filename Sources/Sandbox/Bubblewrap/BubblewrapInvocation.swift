import SystemPackage

/// The command line for `bwrap` that reproduces a ``SandboxSpec``: upstream's invocation, argument for argument.
///
/// bwrap receives almost everything through `--args FD` (NUL-separated), the seccomp program through
/// `--seccomp FD` and each data file through `--ro-bind-data FD DEST`, exactly as Oasis Core does; we add
/// `--json-status-fd FD` to tell a failed setup from a runtime that ran. Descriptor numbers start at 3 in
/// the order of ``channels``, skipping the spec's inherited descriptors (which keep their numbers); the
/// spawner places each channel's bwrap end at its number in the child.
struct BubblewrapInvocation: Sendable {
    /// What a descriptor handed to bwrap carries.
    enum Channel: Sendable, Hashable {
        /// The NUL-separated options (``argumentsPayload``), read before anything else.
        case arguments
        /// The BPF program, read once the sandbox is built, just before the runtime is started.
        case seccomp
        /// ``SandboxSpec/dataFiles``[index], read while the sandbox is built.
        case data(index: Int)
        /// bwrap's JSON status lines (bwrap writes, we read).
        case status
    }

    /// argv for bwrap itself (`argv[0]` excluded): `--args N -- /entrypoint ARGS…`.
    var commandLine: [String]
    /// Options sent through the `--args` descriptor, each terminated by NUL when written.
    var pipedArguments: [String]
    /// Every channel with its descriptor number in bwrap, in bwrap's reading order (status last).
    var channels: [(channel: Channel, number: Int32)]

    /// Builds the invocation.
    ///
    /// - Parameters:
    ///   - executable: host path bound at `/entrypoint` (symlinks resolved).
    ///   - binds: the spec's binds with host sources resolved, in spec order.
    ///   - resolvConf: host path bound read-only at `/etc/resolv.conf` when the network is shared.
    ///   - libraries: read-only binds and symlinks of the resolved shared libraries.
    ///   - reserved: descriptor numbers in use in the child (the spec's inherited descriptors).
    init(
        spec: SandboxSpec, executable: String, binds: [BindMount], resolvConf: String?,
        libraries: SharedLibraryLayout, reserved: Set<Int32>
    ) {
        var next: Int32 = 3
        var channels: [(channel: Channel, number: Int32)] = []
        func open(_ channel: Channel) -> String {
            while reserved.contains(next) { next += 1 }
            channels.append((channel, next))
            next += 1
            return String(next - 1)
        }
        let argumentsNumber = open(.arguments)
        var args: [String] = [
            "--unshare-all",
            "--cap-drop", "ALL",
            "--hostname", spec.hostname,
        ]
        // `--size` applies to the next --tmpfs only; /dev/shm gets its own sized tmpfs over --dev's dir.
        let size = spec.limits.tmpfsBytes.map { ["--size", String($0)] } ?? []
        args += size + ["--tmpfs", "/tmp", "--dev", "/dev"]
        if !size.isEmpty { args += size + ["--tmpfs", "/dev/shm"] }
        args += [
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--chdir", "/",
            "--ro-bind", executable, SandboxSpec.entrypointPath.string,
        ]
        if spec.allowNetwork {
            args += ["--share-net"]
            if let resolvConf { args += ["--ro-bind", resolvConf, "/etc/resolv.conf"] }
        }
        if spec.mountProc {
            args += ["--proc", "/proc"]
        }
        for (key, value) in spec.environment.sorted(by: { $0.key < $1.key }) {
            args += ["--setenv", key, value]
        }
        for bind in binds {
            switch bind.mode {
            case .readWrite: args += Self.parent(of: bind.target) + ["--bind", bind.source.string, bind.target.string]
            case .readOnly: args += Self.parent(of: bind.target) + ["--ro-bind", bind.source.string, bind.target.string]
            case .device: args += ["--dev-bind", bind.source.string, bind.target.string]
            }
        }
        for library in libraries.binds {
            args += ["--ro-bind", library.source.string, library.target.string]
        }
        for link in libraries.symbolicLinks {
            args += ["--symlink", link.destination.string, link.path.string]
        }
        args += ["--seccomp", open(.seccomp)]
        for (index, file) in spec.dataFiles.enumerated() {
            args += Self.parent(of: file.target) + ["--ro-bind-data", open(.data(index: index)), file.target.string]
        }
        args += ["--json-status-fd", open(.status)]

        self.commandLine = ["--args", argumentsNumber, "--", SandboxSpec.entrypointPath.string] + spec.arguments
        self.pipedArguments = args
        self.channels = channels
    }

    /// `--dir PARENT` for a target below a directory other than `/` (upstream's habit; bwrap would
    /// create missing parents anyway).
    private static func parent(of target: FilePath) -> [String] {
        let parent = target.removingLastComponent()
        return parent.components.isEmpty ? [] : ["--dir", parent.string]
    }

    /// The `--args` payload: every argument NUL-terminated.
    var argumentsPayload: [UInt8] {
        var bytes: [UInt8] = []
        for argument in pipedArguments {
            bytes.append(contentsOf: argument.utf8)
            bytes.append(0)
        }
        return bytes
    }

    /// The descriptor number of `channel` in bwrap.
    func number(of channel: Channel) -> Int32? {
        channels.first { $0.channel == channel }?.number
    }
}
