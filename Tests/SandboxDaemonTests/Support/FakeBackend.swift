import Foundation
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import SandboxDaemon
import Synchronization

/// A backend whose runtimes are simulated: `start` becomes running at once with version 1.2.3.
final class FakeBackend: RuntimeBackend {
    let created = Mutex<[String: FakeRuntime]>([:])

    func makeRuntime(
        _ spec: RuntimeSpecification, onNotice: @escaping @Sendable (RuntimeNotice) -> Void
    ) throws -> any ManagedRuntime {
        let runtime = FakeRuntime(name: spec.name, onNotice: onNotice)
        created.withLock { $0[spec.name] = runtime }
        return runtime
    }

    func runtime(_ name: String) -> FakeRuntime? { created.withLock { $0[name] } }
}

final class FakeRuntime: ManagedRuntime {
    private struct State {
        var snapshot = RuntimeStatus(state: .stopped)
        var starts = 0
    }

    let name: String
    /// Told every notice at once, as the provisioner's manager task does.
    private let onNotice: @Sendable (RuntimeNotice) -> Void
    private let state = Mutex(State())
    private static let nextPID = Atomic<Int32>(40_000)

    init(name: String, onNotice: @escaping @Sendable (RuntimeNotice) -> Void) {
        self.name = name
        self.onNotice = onNotice
    }

    var startCount: Int { state.withLock { $0.starts } }

    func start() {
        let started = state.withLock { state -> RuntimeStatus? in
            guard state.snapshot.state != .running else { return nil }
            state.starts += 1
            state.snapshot = RuntimeStatus(
                state: .running, pid: Self.nextPID.add(1, ordering: .relaxed).newValue,
                version: Version(major: 1, minor: 2, patch: 3), restarts: state.snapshot.restarts,
                startedAt: Date()
            )
            return state.snapshot
        }
        if let started, let pid = started.pid, let version = started.version {
            onNotice(.started(pid: pid, version: version, restarts: started.restarts))
        }
    }

    func stop() async {
        let stopped = state.withLock { state -> Int32?? in
            guard state.snapshot.state == .running else { return nil }
            defer {
                state.snapshot.state = .stopped
                state.snapshot.pid = nil
            }
            return .some(state.snapshot.pid)
        }
        if let stopped { onNotice(.stopped(pid: stopped, exit: .signaled(15), requested: true)) }
    }

    func abort(force: Bool) async throws {
        await stop()
        state.withLock { $0.snapshot.restarts += 1 }
        start()
    }

    func ping(timeout: Duration) async throws -> Duration { .microseconds(42) }

    var status: RuntimeStatus { state.withLock { $0.snapshot } }
}
