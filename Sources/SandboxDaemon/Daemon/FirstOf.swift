import Synchronization

/// The result of `work`, or `fallback` once `timeout` has passed, whichever comes first; never waits for
/// the other one (it is left to finish, or not, on its own).
func firstOf<T: Sendable>(
    _ work: @escaping @Sendable () async -> T, orAfter timeout: Duration, _ fallback: T
) async -> T {
    let gate = ResumeOnce<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        gate.arm(continuation)
        Task { gate.resume(await work()) }
        Task {
            try? await Task.sleep(for: timeout)
            gate.resume(fallback)
        }
    }
}

/// Resumes a continuation exactly once, whoever comes first.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(_ value: T) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
