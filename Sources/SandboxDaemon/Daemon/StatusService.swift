import ServiceLifecycle

/// Reports the state counts at startup and after runtime events: once per batch of events that arrived
/// while the last count was made, so a burst of provisions does not recount every runtime per event.
struct StatusService: Service, CustomStringConvertible {
    var description: String { "StatusService" }
    let registry: Registry
    let events: EventHub
    let reporter: any DaemonReporter

    func run() async throws {
        let stream = events.subscribe(latestOnly: true)
        reporter.statusChanged(registry.counts())
        for await _ in stream.cancelOnGracefulShutdown() {
            reporter.statusChanged(registry.counts())
        }
    }
}
