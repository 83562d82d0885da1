import ServiceLifecycle

/// Lets ``Daemon/shutdown()`` start a graceful shutdown of the group from outside.
final class ShutdownTrigger: Service, Sendable, CustomStringConvertible {
    var description: String { "ShutdownTrigger" }
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func fire() { continuation.yield() }

    func run() async throws {
        // Returning ends this service, which (see its configuration) shuts the group down gracefully.
        for await _ in stream.cancelOnGracefulShutdown() { return }
    }
}
