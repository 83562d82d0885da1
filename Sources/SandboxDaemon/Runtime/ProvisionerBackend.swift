import Bundle
import CBOR
public import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import SystemPackage
public import SystemdSupport

/// The production ``RuntimeBackend``: the seam implemented with the `RuntimeProvisioner` module.
///
/// Maps the daemon's configuration to a `ProvisionerConfiguration` (host info, default backend, bubblewrap
/// path, runtime directory, host ids, supervision timings) and each ``RuntimeSpecification`` to a
/// `RuntimeSpec`.
public struct ProvisionerBackend: RuntimeBackend {
    let provisioner: Provisioner
    let bubblewrapEnabled: Bool
    /// Explodes bundle specs to `<state directory>/bundles/<manifest hash>/`.
    let bundles: BundleStore

    /// - Parameter journal: receives runtime output and supervision steps (sandboxd's journald integration).
    public init(configuration: DaemonConfiguration, logger: Logger, journal: ProvisionerJournal? = nil) throws {
        let host = configuration.host
        var settings = ProvisionerConfiguration(hostInfo: HostInfo(
            consensusBackend: host.consensusBackend,
            consensusProtocolVersion: Version(
                major: host.consensusProtocolVersion.major, minor: host.consensusProtocolVersion.minor,
                patch: host.consensusProtocolVersion.patch
            ),
            consensusChainContext: host.consensusChainContext
        ))
        settings.defaultBackend = configuration.defaultBackend
        if let path = configuration.bubblewrapPath { settings.sandboxBinaryPath = FilePath(path) }
        settings.runtimeDirectory = FilePath(configuration.runtimeDirectory)
        settings.hostIDs = configuration.hostIDs
        settings.timings = configuration.supervision
        settings.logger = logger
        let level = logger.logLevel
        settings.makeRuntimeLogger = { label in
            var runtimeLogger = Logger(label: label)
            runtimeLogger.logLevel = level
            return runtimeLogger
        }
        journal?.install(into: &settings)
        provisioner = try Provisioner(configuration: settings)
        bubblewrapEnabled = configuration.bubblewrapPath != nil
        bundles = BundleStore(
            root: configuration.stateDirectory + "/bundles", limits: configuration.bundleLimits, logger: logger
        )
    }

    public func makeRuntime(_ spec: RuntimeSpecification) throws -> any ManagedRuntime {
        if spec.sandbox == .bubblewrap, !bubblewrapEnabled {
            throw DaemonError(
                .backendForbidden, "the bubblewrap backend is disabled (sandbox.bubblewrap_path is null)",
                field: "sandbox"
            )
        }
        let runtimeSpec = RuntimeSpec(
            id: try Namespace(hex: spec.id),
            name: spec.name,
            executable: FilePath(try executable(spec)),
            arguments: spec.arguments,
            // The spec's environment only, never the service manager's (NOTIFY_SOCKET, LISTEN_*, …).
            environment: SystemdEnvironment.sanitized(spec.environment),
            binds: spec.binds.map { BindMount(source: FilePath($0.source), target: FilePath($0.target), mode: $0.mode) },
            dataFiles: spec.dataFiles.map { DataFile(target: FilePath($0.target), contents: $0.contents) },
            allowNetwork: spec.network,
            mountProc: spec.mountProc,
            localConfig: (spec.localConfig ?? [:]).mapValues(Self.cbor),
            expectedVersion: spec.expectedVersion.map { Version(major: $0.major, minor: $0.minor, patch: $0.patch) },
            backend: spec.sandbox
        )
        return ProvisionedRuntime(runtime: provisioner.newRuntime(runtimeSpec))
    }

    /// The program to run: the spec's executable, or a bundle component's ELF in the exploded bundle.
    ///
    /// A bundle spec the API's validator just exploded and verified carries the path already. Otherwise
    /// (restored state, declared runtimes) the bundle is re-opened under its pinned manifest hash and its
    /// exploded directory verified (or extracted) here, so a restart never trusts what is on disk.
    func executable(_ spec: RuntimeSpecification) throws(DaemonError) -> String {
        guard let source = spec.bundle, spec.executable.isEmpty else { return spec.executable }
        do {
            let exploded = try bundles.prepare(
                bundle: source.path, pinnedManifestHash: source.manifestHash.flatMap { Hex.decode($0, count: 32) }
            )
            let selected = try exploded.manifest.select(component: source.component)
            return exploded.path(of: selected.executable)
        } catch {
            throw DaemonError(bundleError: error)
        }
    }

    /// JSON `local_config` values as CBOR (integers stay integers; other numbers become floats).
    static func cbor(_ value: JSONValue) -> CBORValue {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .integer(let number): .integer(number)
        case .double(let number): .float(number)
        case .string(let text): .text(text)
        case .array(let items): .array(items.map(cbor))
        case .object(let entries): .map(entries.mapValues(cbor))
        }
    }
}

/// A provisioner `Runtime` seen through the daemon's ``ManagedRuntime`` seam.
struct ProvisionedRuntime: ManagedRuntime {
    let runtime: Runtime

    func start() { runtime.start() }
    func stop() async { await runtime.stop() }
    func abort(force: Bool) async throws { try await runtime.abort(force: force) }
    func ping(timeout: Duration) async throws -> Duration { try await runtime.ping(timeout: timeout) }

    var status: RuntimeSnapshot {
        let status = runtime.status
        return RuntimeSnapshot(
            state: RuntimeState(rawValue: status.state.rawValue) ?? .failed,
            pid: status.pid,
            version: status.version.map(Self.version),
            restarts: status.restarts,
            lastError: status.lastError,
            startedAt: status.startedAt
        )
    }

    func events() -> AsyncStream<RuntimeEventKind> {
        let source = runtime.events()
        return AsyncStream { continuation in
            let task = Task {
                for await event in source {
                    switch event {
                    case .started(let version): continuation.yield(.started(version: Self.version(version)))
                    case .failedToStart(let error): continuation.yield(.failedToStart(error: error))
                    case .stopped(let exit): continuation.yield(.stopped(exit: exit))
                    case .updated: continuation.yield(.updated)
                    case .configUpdated: continuation.yield(.configUpdated)
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func version(_ version: Version) -> RuntimeVersion {
        RuntimeVersion(major: version.major, minor: version.minor, patch: version.patch)
    }
}
