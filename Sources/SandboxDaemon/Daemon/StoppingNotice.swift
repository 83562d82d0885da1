import ServiceLifecycle

/// Sends STOPPING=1 the moment a graceful shutdown begins (it is the first service told).
struct StoppingNotice: Service, CustomStringConvertible {
    var description: String { "StoppingNotice" }
    let reporter: any DaemonReporter

    func run() async throws {
        try? await gracefulShutdown()
        reporter.stopping()
    }
}
