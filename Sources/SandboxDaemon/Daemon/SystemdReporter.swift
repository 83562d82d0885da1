public import Logging
import Synchronization
public import SystemdSupport
import SystemPackage

/// Reports to systemd and the journal: `sd_notify` (READY, STATUS, RELOADING, STOPPING, WATCHDOG, fatal)
/// and runtime lifecycle entries with fixed `MESSAGE_ID`s; logs like ``LoggingReporter`` as well.
///
/// Without `NOTIFY_SOCKET` the notifier is a no-op, so this reporter is right under any service manager.
public final class SystemdReporter: DaemonReporter {
    private struct State {
        var reloading = false
        var alive = 0
        /// Last known pid per runtime name, for the `stopped` entry (the snapshot has none by then).
        var pids: [String: Int32] = [:]
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

    public func stopping() {
        logging.stopping()
        notifier.stopping(left: state.withLock { $0.alive })
    }

    public func fatal(_ error: DaemonError) {
        logging.fatal(error)
        notifier.fatal(error.message, errno: Self.errno(for: error.code))
    }

    public func runtimeEvent(_ event: EventDocument, status: StatusDocument?) {
        var runtime = RuntimeIdentity(id: status?.id ?? event.runtime, name: event.runtime, pid: status?.pid)
        switch event.kind {
        case .started(let version):
            state.withLock { $0.pids[event.runtime] = status?.pid }
            lifecycle.record(.started, runtime: runtime, details: .init(restartCount: status?.restarts, version: "\(version)"))
        case .failedToStart(let error):
            lifecycle.record(.failedToStart, runtime: runtime, details: .init(restartCount: status?.restarts, error: error))
        case .stopped(let exit):
            runtime.pid = state.withLock { $0.pids.removeValue(forKey: event.runtime) } ?? runtime.pid
            lifecycle.record(.stopped, runtime: runtime, details: LifecycleDetails(exit: exit, restartCount: status?.restarts))
        case .updated, .configUpdated:
            break
        }
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
