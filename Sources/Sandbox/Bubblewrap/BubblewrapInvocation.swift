import SystemPackage

/// The command line for `bwrap` that reproduces a ``SandboxSpec``: the seed's invocation, argument for argument.
///
/// bwrap receives almost everything through `--args FD` (NUL-separated), the seccomp program through
/// `--seccomp FD` and each data file through `--ro-bind-data FD DEST`, exactly as Oasis Core does. The
/// descriptors are numbered from 3 in the order of ``pipes``; the spawner must place each pipe's read end
/// at that number in the child.
struct BubblewrapInvocation: Sendable {
    /// What a descriptor handed to bwrap carries.
    enum Pipe: Sendable, Equatable {
        case arguments
        case seccomp
        case data(index: Int)
    }

    /// argv for bwrap itself (`argv[0]` excluded): `--args 3 -- /entrypoint ARGS…`.
    var commandLine: [String]
    /// Arguments sent through the `--args` pipe, each terminated by NUL when written.
    var pipedArguments: [String]
    /// Descriptor payloads, in descriptor order (index 0 is fd 3).
    var pipes: [Pipe]

    /// The fd number a pipe gets in bwrap.
    static func descriptorNumber(ofPipeAt index: Int) -> Int32 { Int32(3 + index) }

    /// Builds the invocation.
    ///
    /// - Parameters:
    ///   - libraries: read-only binds of the resolved shared libraries (targets already in sandbox layout).
    ///   - symlinks: `(target, link)` pairs created in the sandbox, e.g. `("/usr/lib", "/usr/lib64")`.
    init(spec: SandboxSpec, libraries: [BindMount], symlinks: [(target: String, link: String)]) {
        var pipes: [Pipe] = [.arguments]
        var args: [String] = [
            "--unshare-all",
            "--cap-drop", "ALL",
            "--hostname", spec.hostname,
            "--tmpfs", "/tmp",
            "--dev", "/dev",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--chdir", "/",
            "--ro-bind", spec.executable.string, SandboxSpec.entrypointPath.string,
        ]
        if spec.allowNetwork {
            args += ["--share-net", "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
        }
        if spec.mountProc {
            args += ["--proc", "/proc"]
        }
        for (key, value) in spec.environment.sorted(by: { $0.key < $1.key }) {
            args += ["--setenv", key, value]
        }
        for bind in spec.binds {
            let parent = bind.target.removingLastComponent().string
            switch bind.mode {
            case .readWrite: args += ["--dir", parent, "--bind", bind.source.string, bind.target.string]
            case .readOnly: args += ["--dir", parent, "--ro-bind", bind.source.string, bind.target.string]
            case .device: args += ["--dev-bind", bind.source.string, bind.target.string]
            }
        }
        for library in libraries {
            args += ["--ro-bind", library.source.string, library.target.string]
        }
        for symlink in symlinks {
            args += ["--symlink", symlink.target, symlink.link]
        }
        pipes.append(.seccomp)
        args += ["--seccomp", String(Self.descriptorNumber(ofPipeAt: pipes.count - 1))]
        for (index, file) in spec.dataFiles.enumerated() {
            pipes.append(.data(index: index))
            args += [
                "--dir", file.target.removingLastComponent().string,
                "--ro-bind-data", String(Self.descriptorNumber(ofPipeAt: pipes.count - 1)), file.target.string,
            ]
        }

        self.commandLine = ["--args", String(Self.descriptorNumber(ofPipeAt: 0)), "--", SandboxSpec.entrypointPath.string]
            + spec.arguments
        self.pipedArguments = args
        self.pipes = pipes
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
}

