#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Synchronization
import SystemCalls

/// One thread, one epoll: watches pidfds (process exit) and pipe read ends for every sandbox.
///
/// Handlers are one-shot: the registration is removed before the handler runs on the monitor
/// thread, so handlers must be short (resume a continuation, read a chunk). Scales to hundreds of
/// processes without a thread per process.
final class ProcessMonitor: Sendable {
    static let shared = ProcessMonitor()

    typealias Handler = @Sendable (_ events: UInt32) -> Void

    private let epollFD: CInt
    private let handlers = Mutex<(next: UInt64, byToken: [UInt64: (fd: CInt, handler: Handler)])>((1, [:]))

    private init() {
        let fd = epoll_create1(CInt(EPOLL_CLOEXEC))
        precondition(fd >= 0, "epoll_create1 failed: errno \(errno)")
        epollFD = fd
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let monitor = Unmanaged<ProcessMonitor>.fromOpaque(context!).takeRetainedValue()
            monitor.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    /// Calls `handler` once on the monitor thread when `fd` reports `events` (EPOLLIN by default).
    /// Returns a token for ``cancel(_:)``.
    @discardableResult
    func watch(_ fd: CInt, events: UInt32 = UInt32(EPOLLIN.rawValue), handler: @escaping Handler) throws(SystemCallError) -> UInt64 {
        let token = handlers.withLock { state -> UInt64 in
            let token = state.next
            state.next += 1
            state.byToken[token] = (fd, handler)
            return token
        }
        var event = epoll_event()
        event.events = events | UInt32(EPOLLONESHOT.rawValue)
        event.data.u64 = token
        do throws(SystemCallError) {
            try retryingInterrupts("epoll_ctl(ADD, \(fd))") { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }
        } catch {
            _ = handlers.withLock { $0.byToken.removeValue(forKey: token) }
            throw error
        }
        return token
    }

    /// Removes a registration that has not fired; returns false when it already fired (or is firing).
    /// Either way the descriptor is out of the epoll set when this returns, so the caller may close it.
    @discardableResult
    func cancel(_ token: UInt64) -> Bool {
        handlers.withLock { state in
            guard let entry = state.byToken.removeValue(forKey: token) else { return false }
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, entry.fd, nil)
            return true
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let count = retryingEINTR {
                events.withUnsafeMutableBufferPointer { buffer in
                    epoll_wait(epollFD, buffer.baseAddress, CInt(buffer.count), -1)
                }
            }
            if count < 0 { fatalError("epoll_wait failed: errno \(errno)") }
            for index in 0..<Int(count) {
                let token = events[index].data.u64
                let fired = events[index].events
                // The DEL happens under the lock: once `cancel` has returned (or the handler runs), the owner
                // may close the descriptor and its number be reused; a DEL after that would remove the new
                // registration.
                let handler = handlers.withLock { state -> Handler? in
                    guard let entry = state.byToken.removeValue(forKey: token) else { return nil }
                    _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, entry.fd, nil)
                    return entry.handler
                }
                handler?(fired)
            }
        }
    }
}

/// One task at a time suspended until a descriptor is ready on ``ProcessMonitor``, cancellably.
///
/// The registration's token and the waiting continuation sit under one lock, so a wake-up, a
/// cancellation and a registration racing them resume the task exactly once, and a registration that
/// lost the race is removed again.
final class ReadinessWait: Sendable {
    enum Outcome: Sendable {
        case ready
        /// The task was cancelled, or ``end()`` was called (now or before).
        case ended
        /// epoll refused the descriptor.
        case unwatchable
        /// Another task is waiting already; this one did not wait.
        case busy
    }

    private struct State {
        var waiter: CheckedContinuation<Outcome, Never>?
        var token: UInt64?
        var ended = false
    }

    private let state = Mutex(State())

    deinit {
        if let token = state.withLock({ $0.token }) { ProcessMonitor.shared.cancel(token) }
    }

    /// A task is suspended in ``wait(for:events:)``.
    var isWaiting: Bool { state.withLock { $0.waiter != nil } }

    /// The descriptor is in the epoll set for the current wait.
    var isArmed: Bool { state.withLock { $0.token != nil } }

    /// Suspends until `fd` reports `events` (one-shot). Returns at once after ``end()`` (``Outcome/ended``)
    /// or while another task waits (``Outcome/busy``).
    func wait(for fd: CInt, events: UInt32 = UInt32(EPOLLIN.rawValue)) async -> Outcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let refused = state.withLock { state -> Outcome? in
                    if state.ended { return .ended }
                    if state.waiter != nil { return .busy }
                    state.waiter = continuation
                    return nil
                }
                if let refused { return continuation.resume(returning: refused) }
                do {
                    let token = try ProcessMonitor.shared.watch(fd, events: events) { [weak self] _ in self?.resume(.ready) }
                    let stale = state.withLock { state -> Bool in
                        if state.waiter == nil { return true }
                        state.token = token
                        return false
                    }
                    if stale { ProcessMonitor.shared.cancel(token) }
                } catch {
                    resume(.unwatchable)
                }
            }
        } onCancel: {
            end()
        }
    }

    /// Ends the wait in progress, if any, and every later one; removes the registration.
    func end() {
        let token = state.withLock { state -> UInt64? in
            state.ended = true
            return state.token
        }
        if let token { ProcessMonitor.shared.cancel(token) }
        resume(.ended)
    }

    private func resume(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            defer {
                state.waiter = nil
                state.token = nil
            }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }
}
