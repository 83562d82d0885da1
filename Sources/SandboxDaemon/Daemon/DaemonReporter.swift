public import Logging
public import RuntimeProvisioner

/// Hooks the daemon calls at lifecycle points: the seam for systemd `sd_notify` (READY/RELOADING/STATUS/
/// STOPPING) and journald reporting, which a later change plugs in. Calls must be cheap and non-blocking.
public protocol DaemonReporter: Sendable {
    /// The control socket is listening and desired state has been restored.
    func ready()
    /// A SIGHUP reload started (``ready()`` follows when it is done).
    func reloading()
    /// Runtime counts per state changed (may be called often; implementations rate-limit).
    func statusChanged(_ counts: [RuntimeState: Int])
    /// Graceful shutdown started.
    func stopping()
    /// The daemon is about to exit because of `error`.
    func fatal(_ error: DaemonError)
    /// How often the supervision loop must call ``watchdogPass()``; nil when no watchdog wants pings.
    var watchdogInterval: Duration? { get }
    /// The supervision loop completed a healthy pass (systemd's `WATCHDOG=1`).
    func watchdogPass()
}

extension DaemonReporter {
    public var watchdogInterval: Duration? { nil }
    public func watchdogPass() {}
}

/// The default reporter: log lines only.
public struct LoggingReporter: DaemonReporter {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func ready() { logger.notice("sandboxd ready") }
    public func reloading() { logger.notice("reloading configuration") }
    public func statusChanged(_ counts: [RuntimeState: Int]) {
        logger.debug("runtime states", metadata: counts.reduce(into: [:]) { $0[$1.key.rawValue] = "\($1.value)" })
    }
    public func stopping() { logger.notice("sandboxd stopping") }
    public func fatal(_ error: DaemonError) { logger.critical("fatal: \(error)") }
}
