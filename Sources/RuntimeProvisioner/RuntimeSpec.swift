public import CBOR
public import RuntimeHostProtocol
public import Sandbox
public import SystemPackage

/// What to run as one supervised runtime: upstream's `host.Config`, flattened.
public struct RuntimeSpec: Sendable {
    /// The runtime's namespace, sent in the handshake.
    public var id: Namespace
    /// A human name, unique per provisioner owner (the daemon's API key).
    public var name: String
    /// Host path of the runtime binary.
    public var executable: FilePath
    public var arguments: [String]
    /// Environment of the runtime; `OASIS_WORKER_HOST` is added by the connector.
    public var environment: [String: String]
    public var binds: [BindMount]
    public var dataFiles: [DataFile]
    public var allowNetwork: Bool
    /// Mount a private `/proc` in the sandbox. Off by default, as in Oasis. A Swift runtime copes without
    /// it when it takes its arguments from `RuntimeArguments` (`CommandLine.arguments` reads
    /// `/proc/self/cmdline`) and keeps work off libdispatch's pool, whose monitor reads `/proc/<tid>/stat`
    /// and traps without it (see the README and `example-runtime`).
    public var mountProc: Bool
    /// Node-local configuration sent in `RuntimeInfoRequest.local_config`.
    public var localConfig: [String: CBORValue]
    /// When set, the runtime must report exactly this version or the start fails.
    public var expectedVersion: Version?
    /// Overrides the provisioner's default backend.
    public var backend: SandboxBackendKind?
    /// What the runtime may consume (effective values: the caller fills in its defaults). cgroup limits
    /// need ``ProvisionerConfiguration/cgroups``; `tmpfsBytes` needs a sandboxing backend.
    public var limits: ResourceLimits
    /// Answers the runtime's own requests; the default answers every one with "method not supported".
    public var handler: any Handler
    /// Whether a host may attach (``Runtime/attachHost(_:)``). The payloads of the runtime's requests
    /// are kept (as bytes) only for a handler that reads them, the spec's or an attached host; while
    /// none does they are validated and dropped unread (``ConnectionConfiguration/discardUnusedBodies``).
    public var attachable: Bool

    public init(
        id: Namespace,
        name: String,
        executable: FilePath,
        arguments: [String] = [],
        environment: [String: String] = [:],
        binds: [BindMount] = [],
        dataFiles: [DataFile] = [],
        allowNetwork: Bool = false,
        mountProc: Bool = false,
        localConfig: [String: CBORValue] = [:],
        expectedVersion: Version? = nil,
        backend: SandboxBackendKind? = nil,
        limits: ResourceLimits = ResourceLimits(),
        handler: any Handler = UnsupportedRequestHandler(),
        attachable: Bool = false
    ) {
        self.attachable = attachable
        self.limits = limits
        self.id = id
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.binds = binds
        self.dataFiles = dataFiles
        self.allowNetwork = allowNetwork
        self.mountProc = mountProc
        self.localConfig = localConfig
        self.expectedVersion = expectedVersion
        self.backend = backend
        self.handler = handler
    }
}
