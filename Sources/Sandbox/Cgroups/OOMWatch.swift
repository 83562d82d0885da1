#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Synchronization
import SystemCalls
import SystemPackage

/// Waits for a runtime cgroup's first OOM kill on a kernel notification, not a timer.
///
/// A polled counter cost every idle runtime two wake-ups a second (100 idle runtimes: 2.7 % of a core,
/// nearly all of the daemon's idle CPU). Here an idle runtime costs nothing: one descriptor sits in
/// ``ProcessMonitor``'s epoll until the kernel signals it.
/// - v2: `memory.events`, held open, polls `EPOLLPRI` when one of its counters changes (the kernel's
///   "file modified" notification, at most every 20 ms); re-reading it through the same descriptor
///   both checks `oom_kill` and re-arms the notification.
/// - v1: an eventfd registered for `memory.oom_control` through `cgroup.event_control`. The kernel signals
///   it when the group runs out of memory, *before* the OOM killer has chosen a victim, and when the group
///   is removed; so after each signal the counter is re-read a few times over ≈ 0.9 s.
///
/// Made by ``RuntimeCgroup/watchOOMKills()``; the descriptor is closed when the watch goes away (on v1 that
/// also unregisters the notification).
public final class OOMWatch: Sendable {
    enum Kind: Sendable {
        /// v2: the descriptor is `memory.events` itself.
        case events
        /// v1: the descriptor is an eventfd; the counter is read from `oomControl`.
        case eventfd(oomControl: FilePath)
    }

    private let kind: Kind
    /// The descriptor: `memory.events` (v2) or the eventfd (v1); closed when the watch goes away.
    private let fd: CInt
    private let readiness = ReadinessWait()
    /// How many times the kernel has signalled the descriptor (tests).
    let signals = Atomic<Int>(0)
    /// Whether the descriptor is in the epoll set, waiting for the next signal (tests).
    var isArmed: Bool { readiness.isArmed }
    /// v1 only: re-reads of `oom_kill` after a signal, as delays since the previous read.
    static let v1Rechecks: [Duration] = [.zero, .milliseconds(10), .milliseconds(50), .milliseconds(250), .milliseconds(600)]

    init(kind: Kind, takingOwnershipOf fd: CInt) {
        self.kind = kind
        self.fd = fd
    }

    deinit {
        readiness.end()
        close(fd)
    }

    /// Opens the notification for the memory directory `memory` of a `version` hierarchy.
    static func open(memory: FilePath, version: CgroupHost.Version) throws(CgroupError) -> OOMWatch {
        switch version {
        case .v2:
            let path = memory.appending("memory.events")
            do {
                let fd = try retryingInterrupts("open(\(path))") { Glibc.open(path.string, O_RDONLY | O_CLOEXEC) }
                return OOMWatch(kind: .events, takingOwnershipOf: fd)
            } catch {
                throw CgroupError(.io, "cannot open \(path)", errno: error.errno)
            }
        case .v1:
            let oomControl = memory.appending("memory.oom_control")
            var eventFD: CInt = -1
            do throws(SystemCallError) {
                try checkErrnoValue("eventfd", sbx_eventfd(&eventFD))
            } catch {
                throw CgroupError(.io, "no eventfd for the OOM notification of \(memory)", errno: error.errno)
            }
            let watch = OOMWatch(kind: .eventfd(oomControl: oomControl), takingOwnershipOf: eventFD)
            let controlFD: CInt
            do {
                controlFD = try retryingInterrupts("open(\(oomControl))") { Glibc.open(oomControl.string, O_RDONLY | O_CLOEXEC) }
            } catch {
                throw CgroupError(.io, "cannot open \(oomControl)", errno: error.errno)
            }
            // The registration holds the group, not this descriptor: it can go once written.
            defer { close(controlFD) }
            try CgroupFiles.write(memory.appending("cgroup.event_control"), "\(eventFD) \(controlFD)")
            return watch
        }
    }

    /// The group's OOM kills so far; nil once the counter cannot be read (the group is gone).
    func kills() -> UInt64? {
        switch kind {
        case .events:
            // pread from 0 restarts the seq_file and records the event count the poll compares against.
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = retryingEINTR { buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) } }
            guard count >= 0 else { return nil }
            return CgroupFiles.oomKillCount(String(decoding: buffer[0..<count], as: UTF8.self))
        case .eventfd(let oomControl):
            return (try? CgroupFiles.read(oomControl, limit: 4096)).map(CgroupFiles.oomKillCount)
        }
    }

    /// Returns true once the group has recorded an OOM kill; false when the task is cancelled, or when a
    /// signal finds the group gone (v1 signals its removal; a v2 poller is not woken by it, so cancel the
    /// wait before removing the group). Costs nothing while nothing happens; should epoll refuse the
    /// descriptor, the counter is read every `fallback` instead.
    public func waitForKill(fallback: Duration = .milliseconds(500)) async -> Bool {
        while true {
            guard let count = kills() else { return false }
            if count > 0 { return true }
            // kernfs always reports EPOLLIN; a changed counter adds EPOLLPRI|EPOLLERR.
            let events = if case .events = kind { UInt32(EPOLLPRI.rawValue) } else { UInt32(EPOLLIN.rawValue) }
            switch await readiness.wait(for: fd, events: events) {
            case .ended, .busy: return false
            case .unwatchable:
                guard (try? await Task.sleep(for: fallback)) != nil else { return false }
                continue
            case .ready: signals.add(1, ordering: .relaxed)
            }
            if case .eventfd = kind {
                drainEventFD()
                for delay in Self.v1Rechecks {
                    if delay > .zero { guard (try? await Task.sleep(for: delay)) != nil else { return false } }
                    guard let count = kills() else { return false }
                    if count > 0 { return true }
                }
            }
        }
    }

    private func drainEventFD() {
        var value: UInt64 = 0
        _ = retryingEINTR { read(fd, &value, MemoryLayout<UInt64>.size) }
    }
}
