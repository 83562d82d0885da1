import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP → reload.
struct ReloadService: Service, CustomStringConvertible {
    var description: String { "ReloadService" }
    let daemon: Daemon
    let registry: Registry
    let reporter: any DaemonReporter
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reporter.reloading()
            await daemon.reload(registry: registry)
            reporter.ready()
        }
    }
}
