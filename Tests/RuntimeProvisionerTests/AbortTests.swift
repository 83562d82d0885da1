import Foundation
import RuntimeHostProtocol
import RuntimeProvisioner
import Synchronization
import Testing

/// Abort as upstream answers it: once the killed process is reaped and Stopped is out; never with a
/// later start failure; with a caller deadline.
@Suite(.enabled(if: canRunRuntimes, whyNotRunnable), .serialized, .timeLimit(.minutes(2)))
struct AbortTests {
    @Test("a forced abort answers after Stopped, and a failing restart is not the caller's error")
    func forcedAbortIgnoresLaterStartFailure() async throws {
        let initializations = Atomic<Int>(0)
        let fixture = try ProvisionerFixture(backend: .namespaces) {
            $0.restartInitialInterval = .seconds(60)
        } configure: {
            $0.hostInitializer = { parameters in
                // The first start succeeds; every later one fails.
                guard initializations.add(1, ordering: .relaxed).newValue == 1 else {
                    throw ProvisionerError(.hostInitializerFailed, "refused on purpose")
                }
                return HostInitializerResult(version: parameters.version)
            }
        }
        defer { fixture.remove() }
        let runtime = fixture.runtime()
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait("started") { $0.isStarted }
            let pid = try #require(runtime.status.pid)
            try await runtime.abort(force: true)  // must not throw the restart's failure
            #expect(kill(pid, 0) != 0, "the aborted process was not reaped before the answer")
            try await recorder.wait("failed restart") { $0.isFailedToStart }
            let kinds = recorder.events.map { "\($0)".prefix(8) }
            #expect(kinds.firstIndex(of: "stopped(") ?? .max < kinds.firstIndex(of: "failedTo") ?? -1, "\(kinds)")
        }
    }

    @Test("an abort caller's deadline ends its wait with a timeout error")
    func abortDeadline() async throws {
        let fixture = try ProvisionerFixture(backend: .namespaces) { $0.abortTimeout = .seconds(30) }
        defer { fixture.remove() }
        let runtime = fixture.runtime(arguments: ["--abort-mode", "ignore"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait("started") { $0.isStarted }
            do {
                try await runtime.abort(force: false, timeout: .milliseconds(200))
                Issue.record("an ignored abort returned before its 30 s graceful timeout")
            } catch let error as ProvisionerError {
                #expect(error.code == .timeout, "\(error)")
            }
        }
    }

    @Test("aborts queued behind a forced one either succeed or get runtime_restarted, never a start failure")
    func queuedAborts() async throws {
        let fixture = try ProvisionerFixture(backend: .namespaces)
        defer { fixture.remove() }
        let runtime = fixture.runtime()
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait("started") { $0.isStarted }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        do {
                            try await runtime.abort(force: true)
                            return "ok"
                        } catch let error as ProvisionerError {
                            return error.code.rawValue
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.contains("ok"), "\(outcomes)")
            #expect(outcomes.allSatisfy { $0 == "ok" || $0 == "runtime_restarted" }, "\(outcomes)")
            try await waitForState(runtime, .running)
        }
    }
}
