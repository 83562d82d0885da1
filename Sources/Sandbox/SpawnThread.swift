#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import SystemCalls

/// One thread that never exits, on which processes with a parent-death signal are started.
///
/// `PR_SET_PDEATHSIG` (bwrap's `--die-with-parent`) fires when the *thread* that created the process
/// exits, not the process, and Swift's concurrency pool retires idle threads: a bwrap started from a
/// pool thread would be SIGKILLed, sandbox and all, a few seconds later. Started from here, it dies only
/// with the daemon. Jobs run one at a time; keep them short (a vfork-style spawn).
final class SpawnThread: Sendable {
    static let shared = SpawnThread()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let pending = Semaphore()

    private init() {
        DetachedThread.start { [self] in
            while true {
                pending.wait()
                let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                job?()
            }
        }
    }

    /// Runs `body` on the spawn thread and waits for it.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws(SandboxError) -> T) throws(SandboxError) -> T {
        let completion = Completion<T>()
        jobs.withLock {
            $0.append {
                let outcome = Result { () throws(SandboxError) -> T in try body() }
                completion.result.withLock { $0 = outcome }
                completion.done.signal()
            }
        }
        pending.signal()
        completion.done.wait()
        return try completion.result.withLock { $0! }.get()
    }

    private final class Completion<T: Sendable>: Sendable {
        let result = Mutex<Result<T, SandboxError>?>(nil)
        let done = Semaphore()
    }
}

/// A POSIX semaphore (the module avoids Foundation).
///
/// `@unchecked Sendable`: the only state is the `sem_t`, which POSIX defines for concurrent use by
/// threads; the pointer itself never changes after `init`.
final class Semaphore: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init(value: UInt32 = 0) { sem_init(semaphore, 0, value) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func signal() { sem_post(semaphore) }

    func wait() {
        retryingEINTR { sem_wait(semaphore) }
    }
}
