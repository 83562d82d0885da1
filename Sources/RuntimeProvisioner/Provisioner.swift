public import Sandbox
import Synchronization

/// Creates supervised runtimes that run in process sandboxes: upstream's sandbox provisioner.
public final class Provisioner: Sendable {
    public let configuration: ProvisionerConfiguration
    let environment: ProvisionerEnvironment

    /// Fails when ``ProvisionerConfiguration/hostInfo`` is missing, as upstream does.
    public init(configuration: ProvisionerConfiguration) throws {
        guard let hostInfo = configuration.hostInfo else {
            throw ProvisionerError(.missingHostInfo, "no host information provided")
        }
        self.configuration = configuration
        self.environment = ProvisionerEnvironment(configuration: configuration, hostInfo: hostInfo)
    }

    /// The provisioner's name, as upstream reports it.
    public var name: String { "sandbox" }

    /// A runtime for `spec`, not yet started.
    ///
    /// `onNotice` is told every ``RuntimeNotice`` of this runtime, synchronously from its manager task and
    /// in order (after ``ProvisionerConfiguration/noticeObserver``); it must not block.
    public func newRuntime(_ spec: RuntimeSpec, onNotice: (@Sendable (RuntimeNotice) -> Void)? = nil) -> Runtime {
        Runtime(spec: spec, environment: environment, onNotice: onNotice)
    }

    /// The default ``ProvisionerConfiguration/sandboxSpecBuilder``: the runtime's own fields, output piped
    /// to the log wrapper.
    @Sendable public static func defaultSandboxSpec(_ context: SandboxSpecContext) -> SandboxSpec {
        let spec = context.spec
        return SandboxSpec(
            executable: spec.executable,
            arguments: spec.arguments,
            environment: spec.environment,
            binds: spec.binds,
            dataFiles: spec.dataFiles,
            standardOutput: .pipe,
            standardError: .pipe,
            allowNetwork: spec.allowNetwork,
            mountProc: spec.mountProc
        )
    }
}

/// What every runtime of one provisioner shares: configuration, host ids and the sandbox backends.
final class ProvisionerEnvironment: Sendable {
    let configuration: ProvisionerConfiguration
    let hostInfo: HostInfo
    let hostIDs: HostIDAllocator
    /// One resolver for every backend, so `ld.so.cache` is parsed once.
    let libraries = SharedLibraryResolver()
    private let backends = Mutex<[SandboxBackendKind: any SandboxBackend]>([:])

    init(configuration: ProvisionerConfiguration, hostInfo: HostInfo) {
        self.configuration = configuration
        self.hostInfo = hostInfo
        self.hostIDs = HostIDAllocator(range: configuration.hostIDs)
    }

    func backendKind(for spec: RuntimeSpec) -> SandboxBackendKind {
        configuration.insecureNoSandbox ? .none : (spec.backend ?? configuration.defaultBackend)
    }

    /// The sandbox backend of a kind, made on first use; all of them share ``hostIDs``.
    ///
    /// Unsandboxed runtimes do not come through here: each gets its own ``UnsandboxedRuntime`` spawn.
    func backend(_ kind: SandboxBackendKind) -> any SandboxBackend {
        backends.withLock { backends in
            if let backend = backends[kind] { return backend }
            let backend: any SandboxBackend
            switch kind {
            case .namespaces:
                backend = NamespaceSandbox(
                    configuration: .init(hostIDs: hostIDs.range, spawnerExecutable: configuration.spawnerPath?.string,
                                         netnsPool: configuration.netnsPool),
                    libraries: libraries,
                    hostIDs: hostIDs,
                    logger: configuration.logger
                )
            case .bubblewrap:
                backend = BubblewrapBackend(
                    bwrapPath: configuration.sandboxBinaryPath,
                    libraries: libraries,
                    hostIDs: hostIDs,
                    logger: configuration.logger
                )
            case .none:
                // Contract above: `Incarnation.launch` spawns unsandboxed runtimes without a backend.
                preconditionFailure("unsandboxed runtimes are spawned by UnsandboxedRuntime, not a shared backend")
            }
            backends[kind] = backend
            return backend
        }
    }
}
