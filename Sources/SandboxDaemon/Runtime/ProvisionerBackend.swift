import Bundle
import CBOR
public import Logging
import RuntimeHostProtocol
public import RuntimeProvisioner
import Sandbox
import Synchronization
import SystemPackage
public import RuntimeJournal
import SystemdSupport

/// The production ``RuntimeBackend``: the seam implemented with the `RuntimeProvisioner` module.
///
/// Maps the daemon's configuration to a `ProvisionerConfiguration` (host info, default backend, bubblewrap
/// path, spawner path and network namespace pool, runtime directory, host ids, supervision timings) and each ``RuntimeSpecification`` to a
/// `RuntimeSpec`.
public struct ProvisionerBackend: RuntimeBackend {
    let provisioner: Provisioner
    let bubblewrapEnabled: Bool
    /// Every runtime's output as a bounded, rotated file under `<state>/logs` (with or without journald).
    public let logFiles: RuntimeLogFiles?
    let cgroups: CgroupHost?
    public let limitSupport: LimitSupport
    /// Explodes bundle specs to `<state directory>/bundles/<manifest hash>/`.
    let bundles: BundleStore

    /// - Parameter journal: receives runtime output and supervision steps (sandboxd's journald integration).
    /// - Parameter metrics: receives launches, watchdog kills and every runtime connection's RHP calls.
    public init(
        configuration: DaemonConfiguration, logger: Logger, journal: ProvisionerJournal? = nil, metrics: DaemonMetrics? = nil
    ) throws {
        let host = configuration.host
        var settings = ProvisionerConfiguration(hostInfo: HostInfo(
            consensusBackend: host.consensusBackend,
            consensusProtocolVersion: host.consensusProtocolVersion,
            consensusChainContext: host.consensusChainContext
        ))
        settings.defaultBackend = configuration.defaultBackend
        if let path = configuration.bubblewrapPath { settings.sandboxBinaryPath = FilePath(path) }
        settings.spawnerPath = configuration.spawnerPath.map { FilePath($0) }
        settings.netnsPool = configuration.netnsPool
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
        metrics?.install(into: &settings)
        let files = RuntimeLogFiles(directory: configuration.stateDirectory + "/logs", maxBytes: configuration.runtimeLogMaxBytes)
        let next = settings.makeOutputSink
        let internalLogger = logger
        let makeRuntimeLogger = settings.makeRuntimeLogger
        settings.makeOutputSink = { id, name in
            LogFileOutputSink(
                files: files, name: name,
                next: next?(id, name) ?? WrapperOutputSink(
                    runtimeID: id, runtimeName: name, internalLogger: internalLogger, makeLogger: makeRuntimeLogger)
            )
        }
        logFiles = files
        if configuration.limits.cgroups {
            let host = CgroupHost.detect(
                groupName: Self.cgroupGroupName(configuration.runtimeDirectory), logger: logger,
                poolSize: Self.cgroupPoolSize)
            settings.cgroups = host
            cgroups = host
            limitSupport = LimitSupport(
                cgroupVersion: host.status.version?.rawValue, available: host.status.available,
                reasons: host.status.reasons, defaults: configuration.limits.defaults)
        } else {
            cgroups = nil
            let reason = "cgroups are disabled in the configuration (limits.cgroups: false)"
            limitSupport = LimitSupport(
                cgroupVersion: nil, available: [],
                reasons: Dictionary(uniqueKeysWithValues: CgroupController.allCases.map { ($0, reason) }),
                defaults: configuration.limits.defaults)
        }
        provisioner = try Provisioner(configuration: settings)
        bubblewrapEnabled = configuration.bubblewrapPath != nil
        bundles = BundleStore(
            root: configuration.stateDirectory + "/bundles", limits: configuration.bundleLimits, logger: logger
        )
    }

    /// `sandboxd-<8 hex>` from the runtime directory: stable across restarts of one daemon, distinct between
    /// daemons (and test instances) that share a cgroup.
    static func cgroupGroupName(_ runtimeDirectory: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in runtimeDirectory.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash, radix: 16)
        return "sandboxd-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Unused runtime cgroups kept ready, so a start does not pay for mkdir + limits in every hierarchy
    /// (~190 µs on a v1 host); each is used by one incarnation only. Two cover a restart plus one start.
    static let cgroupPoolSize = 2

    /// Kills and removes cgroups of a previous run (a daemon SIGKILL leaves them).
    public func prepare() async {
        await cgroups?.removeStale()
    }

    /// Removes the daemon's group directories (empty once every runtime stopped).
    public func finish() async {
        cgroups?.removeGroupDirectories()
    }

    public func makeRuntime(
        _ spec: RuntimeSpecification, onNotice: @escaping @Sendable (RuntimeNotice) -> Void
    ) throws -> any ManagedRuntime {
        try limitSupport.check(spec.limits, backend: spec.sandbox)
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
            binds: spec.binds,
            dataFiles: spec.dataFiles,
            allowNetwork: spec.network,
            mountProc: spec.mountProc,
            localConfig: (spec.localConfig ?? [:]).mapValues(Self.cbor),
            expectedVersion: spec.expectedVersion,
            backend: spec.sandbox,
            limits: limitSupport.effective(spec.limits, backend: spec.sandbox),
            attachable: true
        )
        return ProvisionedRuntime(runtime: provisioner.newRuntime(runtimeSpec, onNotice: onNotice))
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
    func abort(force: Bool, timeout: Duration?) async throws {
        do {
            try await runtime.abort(force: force, timeout: timeout)
        } catch let error as ProvisionerError where error.code == .timeout {
            throw DaemonError(.timeout, error.message)
        }
    }
    func ping(timeout: Duration) async throws -> Duration { try await runtime.ping(timeout: timeout) }

    var status: RuntimeStatus { runtime.status }
    var currentState: RuntimeState { runtime.currentState }

    func usage() -> ResourceUsage? { runtime.usage() }

    func call(_ body: Body, timeout: Duration) async throws(DaemonError) -> Body {
        do {
            return try await runtime.call(body, timeout: timeout)
        } catch {
            throw Self.callError(error)
        }
    }

    func forward(_ body: Body, timeout: Duration?) async throws(DaemonError) -> Body {
        do {
            return try await runtime.forward(body, timeout: timeout)
        } catch {
            throw Self.callError(error)
        }
    }

    var runtimeInfo: RuntimeInfoResponse? { runtime.currentInfo }

    func attachHost(_ handler: any Handler) throws(DaemonError) -> @Sendable () -> Void {
        do {
            let attachment = try runtime.attachHost(handler)
            return { attachment.detach() }
        } catch let error as ProvisionerError where error.code == .alreadyAttached {
            throw DaemonError(.alreadyAttached, error.message)
        } catch {
            throw DaemonError(.runtimeFailure, "\(error)")
        }
    }

    /// A failed call as the API reports it.
    static func callError(_ error: any Error) -> DaemonError {
        switch error {
        case let error as RHPError:
            switch error.code {
            case .remote:
                let payload = error.remote ?? ErrorPayload()
                var failure = DaemonError(.runtimeError, "the runtime answered with an error: \(BoundedText.bounded(payload.message))")
                failure.runtime = .init(module: payload.module, code: payload.code, message: payload.message)
                return failure
            case .timeout: return DaemonError(.timeout, error.message)
            case .payloadTooLarge: return DaemonError(.payloadTooLarge, error.message)
            default: return DaemonError(.runtimeFailure, error.message)
            }
        case let error as ProvisionerError:
            switch error.code {
            case .timeout: return DaemonError(.timeout, error.message)
            case .stopped, .notReady, .restarting: return DaemonError(.notRunning, error.message)
            default: return DaemonError(.runtimeFailure, error.message)
            }
        case is CancellationError:
            return DaemonError(.timeout, "the call was cancelled")
        default:
            return DaemonError(.runtimeFailure, "\(error)")
        }
    }
}

/// Writes each output line to the runtime's log file, then passes it on.
struct LogFileOutputSink: RuntimeOutputSink {
    let files: RuntimeLogFiles
    let name: String
    let next: any RuntimeOutputSink

    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
        files.append(name: name, stream: stream.rawValue, line: bytes)
        next.line(bytes, stream: stream, complete: complete)
    }

    func finish(stream: RuntimeLogWrapper.Stream) { next.finish(stream: stream) }
}

/// Re-logs output through swift-log (the provisioner's own behaviour without a sink): for daemons
/// without a journal. A cut line is logged once, from its first part.
final class WrapperOutputSink: RuntimeOutputSink {
    private let wrappers: Mutex<[RuntimeLogWrapper.Stream: (wrapper: RuntimeLogWrapper, continuing: Bool)]>

    init(runtimeID: String, runtimeName: String, internalLogger: Logger, makeLogger: @escaping @Sendable (String) -> Logger) {
        var wrappers: [RuntimeLogWrapper.Stream: (wrapper: RuntimeLogWrapper, continuing: Bool)] = [:]
        for stream in [RuntimeLogWrapper.Stream.stdout, .stderr] {
            wrappers[stream] = (RuntimeLogWrapper(
                runtimeID: runtimeID, runtimeName: runtimeName, stream: stream,
                internalLogger: internalLogger, makeLogger: makeLogger), false)
        }
        self.wrappers = Mutex(wrappers)
    }

    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
        wrappers.withLock { wrappers in
            guard var entry = wrappers[stream] else { return }
            if !entry.continuing { entry.wrapper.log(line: bytes, truncated: !complete) }
            entry.continuing = !complete
            wrappers[stream] = entry
        }
    }

    func finish(stream: RuntimeLogWrapper.Stream) {}
}
