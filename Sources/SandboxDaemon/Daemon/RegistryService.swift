import Logging
import ServiceLifecycle

/// Stops every runtime when the group shuts down. Normally the control server has already done so
/// (after it stopped accepting, before ending events streams); this covers a server that failed.
struct RegistryService: Service, CustomStringConvertible {
    var description: String { "RegistryService" }
    let registry: Registry
    let timeout: Duration
    let reporter: any DaemonReporter
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        await Daemon.stopRuntimes(registry, timeout: timeout, reporter: reporter, logger: logger)
    }
}
