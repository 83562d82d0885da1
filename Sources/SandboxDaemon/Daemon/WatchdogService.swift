import ServiceLifecycle

/// The supervision loop's heartbeat: a full pass through the registry, then `WATCHDOG=1`.
///
/// A wedged registry actor (or a starved executor) stops the passes, so systemd's watchdog fires.
struct WatchdogService: Service, CustomStringConvertible {
    var description: String { "WatchdogService" }
    let registry: Registry
    let reporter: any DaemonReporter
    let interval: Duration

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                _ = await registry.list()
                reporter.watchdogPass()
                try await Task.sleep(for: interval)
            }
        }
    }
}
