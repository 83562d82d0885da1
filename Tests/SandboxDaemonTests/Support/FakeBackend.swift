import Foundation
import RuntimeHostProtocol
import RuntimeProvisioner
import SandboxDaemon
import Synchronization

/// A backend whose runtimes are simulated: `start` becomes running at once with version 1.2.3.
final class FakeBackend: RuntimeBackend {
    let created = Mutex<[String: FakeRuntime]>([:])

    func makeRuntime(_ spec: RuntimeSpecification) throws -> any ManagedRuntime {
        let runtime = FakeRuntime(name: spec.name)
        created.withLock { $0[spec.name] = runtime }
        return runtime
    }

    func runtime(_ name: String) -> FakeRuntime? { created.withLock { $0[name] } }
}

final class FakeRuntime: ManagedRuntime {
    private struct State {
        var snapshot = RuntimeStatus(state: .stopped)
        var subscribers: [AsyncStream<RuntimeEventKind>.Continuation] = []
        var starts = 0
    }

    let name: String
    private let state = Mutex(State())
    private static let nextPID = Atomic<Int32>(40_000)

    init(name: String) {
        self.name = name
    }

    var startCount: Int { state.withLock { $0.starts } }

    private func emit(_ event: RuntimeEventKind) {
        for continuation in state.withLock({ $0.subscribers }) { continuation.yield(event) }
    }

    func start() {
        let started = state.withLock { state -> Bool in
            guard state.snapshot.state != .running else { return false }
            state.starts += 1
            state.snapshot = RuntimeStatus(
                state: .running, pid: Self.nextPID.add(1, ordering: .relaxed).newValue,
                version: Version(major: 1, minor: 2, patch: 3), restarts: state.snapshot.restarts,
                startedAt: Date()
            )
            return true
        }
        if started { emit(.started(version: Version(major: 1, minor: 2, patch: 3))) }
    }

    func stop() async {
        let stopped = state.withLock { state -> Bool in
            guard state.snapshot.state == .running else { return false }
            state.snapshot.state = .stopped
            state.snapshot.pid = nil
            return true
        }
        if stopped { emit(.stopped(exit: "signal 15")) }
    }

    func abort(force: Bool) async throws {
        await stop()
        state.withLock { $0.snapshot.restarts += 1 }
        start()
    }

    func ping(timeout: Duration) async throws -> Duration { .microseconds(42) }

    var status: RuntimeStatus { state.withLock { $0.snapshot } }

    func events() -> AsyncStream<RuntimeEventKind> {
        let (stream, continuation) = AsyncStream.makeStream(of: RuntimeEventKind.self)
        state.withLock { $0.subscribers.append(continuation) }
        return stream
    }

    func finishEvents() {
        for continuation in state.withLock({ $0.subscribers }) { continuation.finish() }
    }
}
