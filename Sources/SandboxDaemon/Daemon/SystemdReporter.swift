public import Logging
public import RuntimeProvisioner
import Synchronization
public import SystemdSupport
import SystemPackage

/// Reports to systemd: `sd_notify` (READY, STATUS, RELOADING, STOPPING, WATCHDOG, fatal) and the journal's
/// `reload` lifecycle entry; logs like ``LoggingReporter`` as well. Runtime lifecycle entries come from
/// the provisioner (`ProvisionerJournal`).
///
/// Without `NOTIFY_SOCKET` the notifier is a no-op, so this reporter is right under any service manager.
public final class SystemdReporter: DaemonReporter {
    private struct State {
        var reloading = false
        var stopping = false
        var alive = 0
    }

    private let notifier: SystemdNotifier
    private let lifecycle: JournalLifecycle
    private let logging: LoggingReporter
    private let state = Mutex(State())

    public init(notifier: SystemdNotifier, lifecycle: JournalLifecycle, logger: Logger) {
        self.notifier = notifier
        self.lifecycle = lifecycle
        self.logging = LoggingReporter(logger: logger)
    }

    public var watchdogInterval: Duration? { notifier.watchdogInterval }

    public func watchdogPass() { notifier.watchdogPass() }

    public func ready() {
        logging.ready()
        let reloaded = state.withLock { state in
            defer { state.reloading = false }
            return state.reloading
        }
        if reloaded { lifecycle.record(.reload, runtime: nil) }
        notifier.ready()
    }

    public func reloading() {
        logging.reloading()
        state.withLock { $0.reloading = true }
        notifier.reloading()
    }

    public func statusChanged(_ counts: [RuntimeState: Int]) {
        logging.statusChanged(counts)
        let counts = RuntimeCounts(byState: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }))
        state.withLock { $0.alive = counts.alive }
        notifier.status(counts)
    }

    /// Idempotent: the first call (the shutdown's first step) notifies; later ones do nothing.
    public func stopping() {
        let alive: Int? = state.withLock { state in
            defer { state.stopping = true }
            return state.stopping ? nil : state.alive
        }
        guard let alive else { return }
        logging.stopping()
        notifier.stopping(left: alive)
    }

    public func fatal(_ error: DaemonError) {
        logging.fatal(error)
        notifier.fatal(error.message, errno: Self.errno(for: error.code))
    }

    /// The `ERRNO=` systemd shows for a fatal error.
    static func errno(for code: DaemonError.Code) -> Errno? {
        switch code {
        case .socketInUse: .addressInUse
        case .invalidConfig: .invalidArgument
        case .stateFailure: .ioError
        case .shuttingDown: .canceled
        default: nil
        }
    }
}
