import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Sandbox
import SystemCalls
import SystemPackage

/// `sandbox-exec [OPTIONS] -- EXECUTABLE ARGS…`: runs one executable in a sandbox, like `bwrap`.
struct SandboxExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox-exec",
        abstract: "Run an executable in the sandbox sandboxd gives a runtime.",
        discussion: """
            The runtime's stdout and stderr pass through, and so does its exit status (128+N when it dies \
            of signal N). Its environment is exactly what --setenv gives (nothing is inherited). Inside, / \
            holds only what was asked for plus dev, tmp, entrypoint, the shared-library directories, and \
            etc/resolv.conf with --share-net (/proc only with --proc). SIGINT and SIGTERM are forwarded.
            Exit status of sandbox-exec itself: 125 when the sandbox cannot be set up, 126 when the \
            executable cannot be executed, 127 when it is not found (the failing stage and errno on stderr).
            With --backend none, binds are ignored and --bind-data files are written on the host at DEST.
            """
    )

    @Option(name: .customLong("bind"), help: ArgumentHelp("Bind SRC read-write at DEST.", valueName: "src> <dest"))
    var readWrite: [String] = []
    @Option(name: .customLong("ro-bind"), help: ArgumentHelp("Bind SRC read-only at DEST.", valueName: "src> <dest"))
    var readOnly: [String] = []
    @Option(name: .customLong("dev-bind"), help: ArgumentHelp("Bind SRC at DEST with device access.", valueName: "src> <dest"))
    var device: [String] = []
    @Option(name: .customLong("bind-data"),
            help: ArgumentHelp("Put the contents of FILE (read now) at DEST, read-only.", valueName: "file> <dest"))
    var data: [String] = []
    @Flag(name: .customLong("share-net"), help: "Share the host network and bind /etc/resolv.conf read-only.")
    var shareNetwork = false
    @Option(name: .customLong("setenv"), help: ArgumentHelp("Set variable KEY to VALUE.", valueName: "key> <value"))
    var environment: [String] = []
    @Option(help: "The sandbox's hostname.")
    var hostname: String = SandboxSpec.defaultHostname
    @Option(help: ArgumentHelp("namespaces (default), bubblewrap or none (no sandbox at all).", valueName: "backend"))
    var backend: String = SandboxBackendKind.namespaces.rawValue
    @Option(help: "The bwrap executable for --backend bubblewrap.")
    var bwrap: String = "/usr/bin/bwrap"
    @Option(name: .customLong("uid-base"), help: "Sandboxes take host uids/gids from N upward, one per live sandbox.")
    var uidBase: UInt32 = HostIDRange.default.base
    @Flag(help: "Mount /proc for the sandbox's pid namespace.")
    var proc = false
    /// Tests: the spawn must not depend on the caller's size (the sandbox is cloned by sandboxd-spawner).
    @Option(name: .customLong("ballast-mib"),
            help: ArgumentHelp("Touch N MiB of memory before spawning (tests).", visibility: .hidden))
    var ballastMiB = 0
    @Argument(help: "The executable (a host path) and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        guard SandboxBackendKind(rawValue: backend) != nil else {
            throw ValidationError("--backend must be namespaces, bubblewrap or none, not \(backend.debugDescription)")
        }
        guard !command.isEmpty else { throw ValidationError("missing the executable: sandbox-exec [OPTIONS] -- EXECUTABLE ARGS…") }
        guard uidBase > 0, UInt64(uidBase) + UInt64(Self.idCount) <= UInt64(UInt32.max) else {
            throw ValidationError("--uid-base must be between 1 and \(UInt32.max - Self.idCount)")
        }
        for (name, values) in [("--bind", readWrite), ("--ro-bind", readOnly), ("--dev-bind", device),
                               ("--bind-data", data), ("--setenv", environment)] {
            for value in values where PairedOptions.split(value) == nil {
                throw ValidationError("\(name) takes two values, got \(value.debugDescription)")
            }
        }
    }

    static let idCount: UInt32 = 65_536

    /// The spec the options describe; reads --bind-data files.
    func spec() throws(SandboxError) -> SandboxSpec {
        func pairs(_ values: [String]) -> [(String, String)] { values.compactMap(PairedOptions.split) }
        var binds: [BindMount] = []
        for (mode, values) in [(BindMount.Mode.readWrite, readWrite), (.readOnly, readOnly), (.device, device)] {
            binds += pairs(values).map { BindMount(source: FilePath($0.0), target: FilePath($0.1), mode: mode) }
        }
        var files: [DataFile] = []
        for (file, target) in pairs(data) {
            files.append(DataFile(target: FilePath(target), contents: try Self.read(file)))
        }
        var variables: [String: String] = [:]
        for (key, value) in pairs(environment) { variables[key] = value }
        return SandboxSpec(
            executable: FilePath(command[0]), arguments: Array(command.dropFirst()), environment: variables,
            binds: binds, dataFiles: files, standardOutput: .inherit, standardError: .inherit,
            allowNetwork: shareNetwork, hostname: hostname, mountProc: proc)
    }

    /// Starts the spec with the chosen backend (blocking until the executable runs).
    func start(_ spec: SandboxSpec) throws(SandboxError) -> SandboxProcess {
        if ballastMiB > 0, let ballast = mmap(nil, ballastMiB << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           ballast != MAP_FAILED {
            memset(ballast, 1, ballastMiB << 20)  // kept until exit
        }
        var logger = Logger(label: "sandbox-exec")
        logger.logLevel = .warning
        let ids = HostIDAllocator(range: HostIDRange(base: uidBase, count: Self.idCount))
        switch SandboxBackendKind(rawValue: backend) ?? .namespaces {
        case .namespaces:
            return try NamespaceSandbox(configuration: .init(hostIDs: ids.range), hostIDs: ids, logger: logger)
                .spawnBlocking(spec)
        case .bubblewrap:
            return try BubblewrapBackend(bwrapPath: FilePath(bwrap), hostIDs: ids, logger: logger).spawnBlocking(spec)
        case .none:
            return try UnsandboxedBackend(logger: logger).spawnBlocking(spec)
        }
    }

    private static func read(_ path: String) throws(SandboxError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SandboxError(.setupFailed, "cannot open --bind-data file \(path)", stage: "bind-data", errno: Errno(rawValue: errno))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = retryingEINTR { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if count > 0 { bytes += buffer[0..<count]; continue }
            if count < 0 {
                throw SandboxError(.setupFailed, "cannot read --bind-data file \(path)", stage: "bind-data", errno: Errno(rawValue: errno))
            }
            return bytes
        }
    }
}
