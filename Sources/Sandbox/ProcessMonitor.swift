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
    @discardableResult
    func cancel(_ token: UInt64) -> Bool {
        guard let entry = handlers.withLock({ $0.byToken.removeValue(forKey: token) }) else { return false }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, entry.fd, nil)
        return true
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
                guard let entry = handlers.withLock({ $0.byToken.removeValue(forKey: token) }) else { continue }
                _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, entry.fd, nil)
                entry.handler(fired)
            }
        }
    }
}
