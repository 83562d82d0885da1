public import CBOR
public import Logging
public import RuntimeHostProtocol
public import Sandbox
public import SystemPackage

/// What the host tells every runtime in the handshake.
public struct HostInfo: Sendable, Hashable {
    public var consensusBackend: String
    public var consensusProtocolVersion: Version
    /// 64 lowercase hex characters.
    public var consensusChainContext: String

    public init(
        consensusBackend: String = "tendermint",
        consensusProtocolVersion: Version = Version(major: 7),
        consensusChainContext: String
    ) {
        self.consensusBackend = consensusBackend
        self.consensusProtocolVersion = consensusProtocolVersion
        self.consensusChainContext = consensusChainContext
    }
}

/// What a host initializer gets after a successful handshake: upstream's `HostInitializerParams`.
public struct HostInitializerParameters: Sendable {
    public var runtime: Runtime
    public var spec: RuntimeSpec
    /// The version the runtime reported.
    public var version: Version
    public var info: RuntimeInfoResponse
    /// The runtime's process (sandbox or plain).
    public var process: SandboxProcess
    public var connection: Connection
}

/// What a host initializer answers: upstream's `StartedEvent` (the version to announce and, for TEE
/// runtimes, the capability as raw CBOR).
public struct HostInitializerResult: Sendable {
    public var version: Version
    public var capabilityTEE: CBORRawItem?

    public init(version: Version, capabilityTEE: CBORRawItem? = nil) {
        self.version = version
        self.capabilityTEE = capabilityTEE
    }
}

/// What a sandbox-spec builder gets: upstream's `GetSandboxConfig(cfg, conn, runtimeDir)`.
public struct SandboxSpecContext: Sendable {
    public var spec: RuntimeSpec
    /// The attempt's connector; it adds its socket and variable to the result afterwards.
    public var connector: any Connector
    /// The attempt's private runtime directory on the host.
    public var runtimeDirectory: FilePath
}

/// Everything a ``Provisioner`` needs; upstream's `sandbox.Config`.
public struct ProvisionerConfiguration: Sendable {
    /// Required: the provisioner refuses to exist without it.
    public var hostInfo: HostInfo?
    /// Backend for runtimes whose spec does not name one.
    public var defaultBackend: SandboxBackendKind = .namespaces
    /// Upstream's `InsecureNoSandbox`: every runtime runs with the `none` backend.
    public var insecureNoSandbox = false
    /// Upstream's `SandboxBinaryPath`: `bwrap` for the `bubblewrap` backend.
    public var sandboxBinaryPath: FilePath = "/usr/bin/bwrap"
    /// The `sandboxd-spawner` helper of the `namespaces` backend; `nil`: the one next to the running executable.
    public var spawnerPath: FilePath?
    /// Network namespaces the `namespaces` backend's spawner keeps ready (0 disables the pool); see
    /// ``NamespaceSandbox/Configuration/netnsPool``.
    public var netnsPool = NamespaceSandbox.Configuration.defaultNetnsPool
    /// Parent of the per-runtime directories (each holds that runtime's `host.sock`).
    public var runtimeDirectory: FilePath = "/run/sandboxd/runtimes"
    /// Host uids/gids for sandboxes, one per live runtime.
    public var hostIDs: HostIDRange = .default
    public var timings: SupervisionTimings = .standard
    public var logger = Logger(label: "runtime/host/sandbox")
    /// Makes the logger for a runtime's own output (module label such as `runtime/example`).
    public var makeRuntimeLogger: @Sendable (String) -> Logger = { Logger(label: $0) }
    /// When set, a runtime's output lines go to the sink it returns for (runtime id, runtime name) instead
    /// of ``makeRuntimeLogger`` (sandboxd: one journal entry per line). Called once per process.
    public var makeOutputSink: (@Sendable (_ runtimeID: String, _ runtimeName: String) -> any RuntimeOutputSink)?
    /// Output budget per runtime on the ``makeRuntimeLogger`` path (a sink has its own, see
    /// ``RuntimeOutputSink/readDelay()``): beyond it the runtime's pipes are not read.
    public var outputBudget: OutputBudget.Limit = .default
    /// Told every runtime's every ``RuntimeNotice``, synchronously from its manager task and in order;
    /// must not block.
    public var noticeObserver: @Sendable (Runtime, RuntimeNotice) -> Void = { _, _ in }
    /// Told how each start attempt went (durations, failed stage); not told about attempts cut short by a stop.
    public var launchObserver: @Sendable (Runtime, LaunchReport) -> Void = { _, _ in }
    /// Where every runtime connection records its RHP calls; the provisioner adds the `runtime` label.
    public var rhpMetrics = RHPMetrics()
    /// Creates the connector for one start attempt; the default is ``UnixSocketConnector``.
    public var connectorFactory: @Sendable (ConnectorContext) async throws -> any Connector = { context in
        try await UnixSocketConnector.listen(context: context)
    }
    /// Turns a runtime spec into a sandbox spec (before the connector adds its socket and variable).
    public var sandboxSpecBuilder: @Sendable (SandboxSpecContext) throws -> SandboxSpec = Provisioner.defaultSandboxSpec
    /// Runs after the handshake, within ``SupervisionTimings/hostInitializerTimeout``; returns the
    /// version (and TEE capability) to announce in the `started` event. The default announces the
    /// reported version and no capability.
    public var hostInitializer: @Sendable (HostInitializerParameters) async throws -> HostInitializerResult = {
        HostInitializerResult(version: $0.version)
    }
    /// Where runtime cgroups go (one per incarnation); `nil`: no cgroups, and a spec with a cgroup limit
    /// fails to start. sandboxd passes the ``CgroupHost`` it detected at start.
    public var cgroups: CgroupHost?
    /// OOM kills are seen on the kernel's notification (``OOMWatch``); where the kernel refuses one, a
    /// runtime's cgroup is polled at this interval instead. On cgroup v1 the kernel kills only the process
    /// it picks; seeing the count rise, supervision kills the whole sandbox.
    public var oomCheckInterval: Duration = .milliseconds(500)
    /// Called once a runtime's supervision has ended for good (stopped or given up).
    public var cleanup: @Sendable (RuntimeSpec) -> Void = { _ in }

    public init(hostInfo: HostInfo?) {
        self.hostInfo = hostInfo
    }
}
