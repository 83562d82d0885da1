/// A kind of runtime lifecycle entry; each has a fixed `MESSAGE_ID` explained in `systemd/sandboxd.catalog`.
///
/// The ids were generated once and never change: operators filter on them (`journalctl MESSAGE_ID=…`) and
/// the catalog is keyed by them.
public enum LifecycleEvent: String, Sendable, CaseIterable {
    case started
    case stopped
    case failedToStart = "failed_to_start"
    case restartScheduled = "restart_scheduled"
    case gaveUp = "gave_up"
    case watchdogKill = "watchdog_kill"
    case abort
    /// The runtime exceeded its memory limit and was killed as a whole.
    case outOfMemory = "out_of_memory"
    /// The daemon reloaded its configuration (SIGHUP); the only kind that is not about one runtime.
    case reload

    /// The 128-bit `MESSAGE_ID`, as 32 lower-case hex digits.
    public var messageID: String {
        switch self {
        case .started: "756656ec2b7f4476ab1da87b3d7098b5"
        case .stopped: "038e7513b97647e5a6bd68ca2fef5264"
        case .failedToStart: "cdea07a8ffc142bd87a158bf380ce2d5"
        case .restartScheduled: "6db068fa9e184e7fa3f543091c518161"
        case .gaveUp: "8440d72b76f54539973623bbfbc92be5"
        case .watchdogKill: "483acd737b224ccc85723b6420232c3b"
        case .abort: "2ee75edd552d43b4b3ba73bf6b489186"
        case .reload: "6b6c151493fc4426895222e181a80dfd"
        case .outOfMemory: "2d3087b7435e4933a4fd70f81eb9936b"
        }
    }

    public var priority: JournalPriority {
        switch self {
        case .started: .info
        case .stopped, .restartScheduled, .abort, .reload: .notice
        case .watchdogKill, .outOfMemory: .warning
        case .failedToStart, .gaveUp: .error
        }
    }
}

/// Which runtime an entry is about.
public struct RuntimeIdentity: Sendable, Hashable {
    public var id: String
    public var name: String
    /// Host pid of the runtime process, when it has one.
    public var pid: Int32?

    public init(id: String, name: String, pid: Int32? = nil) {
        self.id = id
        self.name = name
        self.pid = pid
    }
}

/// The facts a lifecycle entry may carry besides the runtime; each becomes a `SANDBOX_*` field when set.
public struct LifecycleDetails: Sendable, Hashable {
    /// Exit status of a process that exited (`SANDBOX_EXIT_STATUS`).
    public var exitStatus: Int32?
    /// Signal that killed the process (`SANDBOX_EXIT_SIGNAL`, plus `SANDBOX_EXIT_SIGNAL_NAME`).
    public var signal: Int32?
    /// Restarts after the first start (`SANDBOX_RESTART_COUNT`).
    public var restartCount: Int?
    /// Delay before the next start (`SANDBOX_BACKOFF_USEC`).
    public var backoff: Duration?
    /// What went wrong (`SANDBOX_ERROR`).
    public var error: String?
    /// Runtime version reported by the handshake (`SANDBOX_RUNTIME_VERSION`).
    public var version: String?
    /// Whether an abort was forced (`SANDBOX_ABORT_FORCE`).
    public var force: Bool?
    /// The memory limit that was exceeded (`SANDBOX_MEMORY_LIMIT`, bytes).
    public var memoryLimit: UInt64?
    /// OOM kills counted in the runtime's cgroup (`SANDBOX_OOM_KILLS`).
    public var oomKills: UInt64?

    public init(
        exitStatus: Int32? = nil, signal: Int32? = nil, restartCount: Int? = nil, backoff: Duration? = nil,
        error: String? = nil, version: String? = nil, force: Bool? = nil
    ) {
        self.exitStatus = exitStatus
        self.signal = signal
        self.restartCount = restartCount
        self.backoff = backoff
        self.error = error
        self.version = version
        self.force = force
    }
}
