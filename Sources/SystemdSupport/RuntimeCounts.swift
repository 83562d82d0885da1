/// How many runtimes are in each state: the numbers in the daemon's `STATUS=` text.
public struct RuntimeCounts: Sendable, Hashable {
    public var up: Int
    public var starting: Int
    public var backoff: Int
    public var failed: Int
    /// Registered but not running (stopped on request, or not started yet).
    public var stopped: Int

    public init(up: Int = 0, starting: Int = 0, backoff: Int = 0, failed: Int = 0, stopped: Int = 0) {
        self.up = up
        self.starting = starting
        self.backoff = backoff
        self.failed = failed
        self.stopped = stopped
    }

    /// Counts keyed by state name: `running` (up), `starting`, `backoff`, `failed`, `stopped` — the raw values
    /// of the provisioner's `RuntimeState`. Unknown names are ignored.
    public init(byState counts: [String: Int]) {
        self.init(
            up: counts["running", default: 0], starting: counts["starting", default: 0],
            backoff: counts["backoff", default: 0], failed: counts["failed", default: 0],
            stopped: counts["stopped", default: 0]
        )
    }

    /// Every registered runtime.
    public var total: Int { up + starting + backoff + failed + stopped }

    /// Runtimes that still have (or are about to have) a process: what a shutdown waits for.
    public var alive: Int { up + starting + backoff }

    /// `running: N runtimes (u up, s starting, b backoff, f failed)`.
    public var runningStatus: String {
        "running: \(total) runtimes (\(up) up, \(starting) starting, \(backoff) backoff, \(failed) failed)"
    }

    /// `stopping: N left`.
    public static func stoppingStatus(left: Int) -> String { "stopping: \(left) left" }
}
