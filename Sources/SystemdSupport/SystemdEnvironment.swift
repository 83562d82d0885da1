/// The variables the service manager hands the daemon, which no runtime may inherit.
///
/// `NOTIFY_SOCKET` would let a runtime speak for the daemon (`NotifyAccess=main` rejects it, but it should
/// never get that far), `LISTEN_*` would make it adopt the daemon's sockets, `WATCHDOG_*` would make it ping
/// for the daemon, and `JOURNAL_STREAM` would make it believe its stderr is the daemon's journal stream.
public enum SystemdEnvironment {
    /// Exact names that are always removed.
    public static let serviceManagerVariables: Set<String> = [
        "NOTIFY_SOCKET", "JOURNAL_STREAM",
        "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
        "WATCHDOG_PID", "WATCHDOG_USEC",
    ]

    /// Whether `name` belongs to the service manager (any `LISTEN_*`/`WATCHDOG_*` counts, for future additions).
    public static func isServiceManagerVariable(_ name: String) -> Bool {
        serviceManagerVariables.contains(name) || name.hasPrefix("LISTEN_") || name.hasPrefix("WATCHDOG_")
    }

    /// `environment` without the service manager's variables.
    public static func sanitized(_ environment: [String: String]) -> [String: String] {
        environment.filter { !isServiceManagerVariable($0.key) }
    }

    /// `NAME=value` entries (an `envp`) without the service manager's variables.
    public static func sanitized(_ assignments: [String]) -> [String] {
        assignments.filter { entry in
            let name = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            return !isServiceManagerVariable(String(name))
        }
    }
}
