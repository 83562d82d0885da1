public import Bundle
public import Logging
public import RuntimeHostProtocol
public import RuntimeProvisioner
public import Sandbox

/// Everything `sandboxd` reads from its config file (`/etc/sandboxd/sandboxd.yaml` by default).
///
/// Defaults here are the documented defaults of the bundled `config/sandboxd.yaml`; a key left out of the
/// file keeps its default. ``ConfigLoader`` parses the file strictly (unknown keys are errors naming the key).
public struct DaemonConfiguration: Sendable, Hashable {
    /// The default config file path.
    public static let defaultPath = "/etc/sandboxd/sandboxd.yaml"

    /// The control socket path.
    public var socketPath = "/run/sandboxd.sock"
    /// Group whose members may use the control socket (besides root); `nil` means root only.
    public var socketGroup: String? = "sandboxd"
    /// Durable desired state (mode 0700).
    public var stateDirectory = "/var/lib/sandboxd"
    /// Size at which a runtime's log file (`<state>/logs/<name>.log`) rotates; two files are kept.
    public var runtimeLogMaxBytes = 1 << 20
    /// Per-runtime working directories are created under it (mode 0711).
    public var runtimeDirectory = "/run/sandboxd/runtimes"
    public var logLevel: Logger.Level = .info

    public var host = HostSettings()
    public var defaultBackend: SandboxBackendKind = .namespaces
    /// Whether specs may ask for `sandbox: none` (no sandbox at all).
    public var allowNone = false
    /// The `bwrap` binary for the `bubblewrap` backend; `nil` disables that backend.
    public var bubblewrapPath: String? = "/usr/bin/bwrap"
    /// The `sandboxd-spawner` helper of the `namespaces` backend (absolute); `nil`: the one next to `sandboxd`.
    public var spawnerPath: String?
    /// Network namespaces `sandboxd-spawner` keeps ready for `namespaces` sandboxes without network, each
    /// used by one sandbox only (`sandbox.netns_pool`, 0...64; 0 disables the pool).
    public var netnsPool = NamespaceSandbox.Configuration.defaultNetnsPool
    /// Host uids/gids handed to sandboxes, one per live sandbox.
    public var hostIDs: HostIDRange = .default
    public var api = APILimits()
    /// Attached hosts (`GET /v1/runtimes/{name}/attach`): handshake and reply deadlines, flood cap.
    public var attach = AttachLimits()
    /// Per-runtime rate limit of output forwarded to the journal (excess lines are dropped and counted).
    public var journal = JournalSettings()
    /// Resource limits: whether to use cgroups at all, and the defaults every runtime gets.
    public var limits = LimitSettings()
    /// Supervision timers: upstream's, except a 5 s SIGTERM grace on stop (upstream kills at once).
    public var supervision: SupervisionTimings = {
        var timings = SupervisionTimings.standard
        timings.stopGracePeriod = .seconds(5)
        return timings
    }()
    /// How long shutdown waits for runtimes to stop before giving up on them.
    public var shutdownTimeout: Duration = .seconds(30)
    /// Archive-safety bounds for runtime bundles (`.orc`): entries, per-file and total uncompressed size,
    /// compression ratio.
    public var bundleLimits = BundleLimits()
    /// An extra plain-TCP listener serving only `GET /metrics` (unauthenticated); nil (the default): none,
    /// metrics are on the control socket only.
    public var metricsListen: MetricsListenAddress?
    /// Runtimes declared in the file, provisioned at start and re-applied on SIGHUP.
    public var runtimes: [RuntimeSpecification] = []

    public init() {}
}

/// The `limits` section: cgroups on/off and per-runtime defaults.
///
/// The defaults bound each runtime so that 500 of them cannot take a host down together in tasks
/// (500 × 256 = 128k tasks, under `kernel.threads-max` of a 16 GiB host and systemd's `pid_max`) or CPU
/// (one CPU each at most, equal weights), and a single one cannot exhaust memory (1 GiB, no swap; the
/// sandbox tmpfs pages count against it). They are ceilings, not reservations: bound the sum with the unit's
/// `MemoryMax=`/`TasksMax=`. A default applies only where the host has the controller.
public struct LimitSettings: Sendable, Hashable {
    /// Create a cgroup per runtime (off: no cgroup limits at all; specs asking for one get `limit_unavailable`).
    public var cgroups = true
    public var defaults = ResourceLimits(
        memoryBytes: 1 << 30, pids: 256, cpuPercent: 100, cpuWeight: 100, tmpfsBytes: 64 << 20, openFiles: 4096)

    public init() {}
}

/// What the host tells runtimes about the node (RHP `HostInfo`).
public struct HostSettings: Sendable, Hashable {
    public var consensusBackend = "tendermint"
    public var consensusProtocolVersion = Version(major: 7)
    /// 64 lowercase hex characters.
    public var consensusChainContext = String(repeating: "0", count: 64)

    public init() {}
}

/// Runtime output forwarded to the journal.
public struct JournalSettings: Sendable, Hashable {
    /// Sustained lines per second per runtime; beyond it the runtime's pipe is not read (backpressure).
    /// 200/s + 2000 burst is at most 8000 lines per journald window of 30 s (see `LogRateLimitBurst=`
    /// in sandboxd.service).
    public var outputLinesPerSecond = 200
    /// Lines a runtime may write in a burst above the sustained rate.
    public var outputBurst = 2000

    public init() {}
}

/// Control API limits.
public struct APILimits: Sendable, Hashable {
    /// Largest accepted request body; larger ones get 413.
    public var maxBodyBytes = 1 << 20
    /// A client must send a whole request (headers and body) within this; otherwise it is dropped.
    public var requestTimeout: Duration = .seconds(10)
    /// Concurrent connections; the one over the cap gets 503 and is closed.
    public var maxConnections = 128
    /// Of ``maxConnections``, the slots only root (and the daemon's own uid) may use: group members are
    /// refused once `maxConnections - rootReservedConnections` connections are open.
    public var rootReservedConnections = 8
    /// Concurrent connections of one non-root peer uid.
    public var maxConnectionsPerUID = 32
    /// Concurrent `GET /v1/events` streams of non-root peers, all together and per uid (root is exempt).
    public var maxEventStreams = 64
    public var maxEventStreamsPerUID = 16

    public init() {}
}


/// `metrics.listen`: an IP address (no host names: nothing is resolved) and a port.
public struct MetricsListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// An address as given (port 0: the kernel picks one; for tests).
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`.
    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
            guard hostPart.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            let octets = hostPart.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ $0.count <= 3 && UInt8($0) != nil }) else { return nil }
        }
        guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }),
              portPart.allSatisfy(\.isASCII), let port = Int(portPart), (1...65535).contains(port) else { return nil }
        host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
