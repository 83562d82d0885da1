import ServiceLifecycle

/// Reports the state counts at startup and after every runtime event.
struct StatusService: Service, CustomStringConvertible {
    var description: String { "StatusService" }
    let registry: Registry
    let events: EventHub
    let reporter: any DaemonReporter

    func run() async throws {
        let stream = events.subscribe()
        reporter.statusChanged(registry.counts())
        for await _ in stream.cancelOnGracefulShutdown() {
            reporter.statusChanged(registry.counts())
        }
    }
}
