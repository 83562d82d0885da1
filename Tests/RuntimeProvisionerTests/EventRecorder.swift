import Foundation
import RuntimeProvisioner
import Synchronization
import TestSupport

/// Records a runtime's events in the background so tests can wait for them with a deadline.
final class EventRecorder: Sendable {
    private final class Store: Sendable {
        let events = Mutex<[(ContinuousClock.Instant, RuntimeNotice)]>([])
    }

    private let store = Store()
    private let consumer: Task<Void, Never>

    init(_ runtime: Runtime) {
        let stream = runtime.events()
        let store = self.store
        consumer = Task {
            for await event in stream {
                store.events.withLock { $0.append((ContinuousClock.now, event)) }
            }
        }
    }

    deinit { consumer.cancel() }

    var events: [RuntimeNotice] { store.events.withLock { $0.map(\.1) } }
    var timestamps: [ContinuousClock.Instant] { store.events.withLock { $0.map(\.0) } }

    /// Waits until `count` events matching `predicate` have been recorded; returns them.
    @discardableResult
    func wait(
        for count: Int = 1,
        within limit: Duration = .seconds(20),
        _ description: String,
        where predicate: (RuntimeNotice) -> Bool
    ) async throws -> [RuntimeNotice] {
        try await eventuallyValue("\(count)× \(description); recorded: \(events)", within: limit, every: .milliseconds(10)) {
            let matching = events.filter(predicate)
            return matching.count >= count ? matching : nil
        }
    }
}

extension RuntimeNotice {
    var isStarted: Bool { if case .started = self { true } else { false } }
    var isStopped: Bool { if case .stopped = self { true } else { false } }
    var isFailedToStart: Bool { if case .failedToStart = self { true } else { false } }
    var failureMessage: String? { if case .failedToStart(let message, _, _) = self { message } else { nil } }
    var failure: RuntimeFailure? { if case .failedToStart(_, let failure, _) = self { failure } else { nil } }
}

/// Runs `body` and stops `runtime` afterwards, also when `body` throws, so no test leaves a runtime behind.
func supervising(_ runtime: Runtime, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        await runtime.stop()
        throw error
    }
    await runtime.stop()
}
