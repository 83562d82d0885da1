import Foundation
public import SystemPackage
import Synchronization

/// Tells the service manager about the daemon's state through `$NOTIFY_SOCKET` (`sd_notify`).
///
/// Without `NOTIFY_SOCKET` (not started by systemd, or `Type=` is not `notify`) every call is a no-op and
/// nothing fails. Send errors never propagate: they go to `onError`, so reporting can never take the daemon
/// down. `STATUS=` updates are rate-limited to one per `statusInterval`, coalescing: the newest text wins
/// and is sent when the window opens. READY/RELOADING/STOPPING/fatal messages are sent at once and carry
/// the current status with them.
///
/// The watchdog is driven by the caller's supervision loop, never by a timer of its own: the loop calls
/// ``watchdogPass()`` after each full healthy pass and sleeps at most ``watchdogInterval`` between passes,
/// so a stuck loop stops the pings and systemd restarts the daemon.
public final class SystemdNotifier: Sendable {
    /// A function that sends one notification message (`KEY=VALUE` lines).
    public typealias Transport = @Sendable (String) throws(SystemdError) -> Void

    /// Where the daemon is; decides how runtime counts are rendered into `STATUS=`.
    enum Phase: Sendable {
        case starting, running, reloading, stopping, failed
    }

    private struct State: Sendable {
        var phase: Phase = .starting
        var lastCounts: RuntimeCounts?
        var lastStatus: String?
        var lastStatusSentAt: ContinuousClock.Instant?
        var pendingStatus: String?
        var flushScheduled = false
        var lastWatchdogAt: ContinuousClock.Instant?
    }

    /// Half of `WATCHDOG_USEC`: how often the supervision loop must pass; nil when the watchdog is off.
    public let watchdogInterval: Duration?
    /// The minimum time between two `STATUS=` messages.
    public let statusInterval: Duration
    private let transport: Transport?
    private let onError: @Sendable (SystemdError) -> Void
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the process environment.
    ///
    /// A malformed watchdog setting is reported to `onError` and leaves the watchdog off.
    public convenience init(
        statusInterval: Duration = .seconds(1),
        onError: @escaping @Sendable (SystemdError) -> Void = { _ in }
    ) {
        let enabled = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"].map { !$0.isEmpty } ?? false
        var timeout: Duration?
        if enabled {
            do { timeout = try LibSystemd.watchdogTimeout() } catch { onError(error) }
        }
        self.init(
            transport: enabled ? Self.sdNotify : nil,
            watchdogTimeout: timeout, statusInterval: statusInterval, onError: onError
        )
    }

    /// A notifier over an explicit transport (nil: disabled) and watchdog timeout (`WATCHDOG_USEC`).
    public convenience init(
        transport: Transport?,
        watchdogTimeout: Duration?,
        statusInterval: Duration = .seconds(1),
        onError: @escaping @Sendable (SystemdError) -> Void = { _ in }
    ) {
        self.init(
            transport: transport, watchdogTimeout: watchdogTimeout, statusInterval: statusInterval,
            onError: onError, clock: { .now }
        )
    }

    /// `clock` is for tests of the watchdog's coalescing; status flushes always sleep on the real clock.
    init(
        transport: Transport?, watchdogTimeout: Duration?, statusInterval: Duration,
        onError: @escaping @Sendable (SystemdError) -> Void, clock: @escaping @Sendable () -> ContinuousClock.Instant
    ) {
        self.transport = transport
        self.watchdogInterval = transport == nil ? nil : watchdogTimeout.map { $0 / 2 }
        self.statusInterval = statusInterval
        self.onError = onError
        self.clock = clock
    }

    @Sendable private static func sdNotify(_ message: String) throws(SystemdError) {
        try LibSystemd.notify(message)
    }

    /// Whether messages go anywhere at all.
    public var isEnabled: Bool { transport != nil }

    /// `READY=1`: startup (or a reload) finished; the control socket answers and desired state is restored.
    public func ready() {
        withState { state in
            state.phase = .running
            var lines = ["READY=1"]
            if let status = state.lastCounts.map({ $0.runningStatus }) { lines.append(takeStatus(status, &state)) }
            send(lines)
        }
    }

    /// Reports runtime counts (`running: …`, or `stopping: N left` once stopping); rate-limited.
    public func status(_ counts: RuntimeCounts) {
        withState { state in
            state.lastCounts = counts
            switch state.phase {
            case .starting, .failed: return
            case .running, .reloading: updateStatus(counts.runningStatus, &state)
            case .stopping: updateStatus(RuntimeCounts.stoppingStatus(left: counts.alive), &state)
            }
        }
    }

    /// Reports a free-form status text; rate-limited like runtime counts.
    public func status(_ text: String) {
        withState { updateStatus(text, &$0) }
    }

    /// Sends `WATCHDOG=1` unless one went out less than half a ``watchdogInterval`` ago.
    ///
    /// Call it from the supervision loop after every full healthy pass; a loop that sleeps at most
    /// ``watchdogInterval`` between passes keeps pings at most 0.75 × `WATCHDOG_USEC` apart.
    public func watchdogPass() {
        guard let interval = watchdogInterval else { return }
        withState { state in
            let now = clock()
            if let last = state.lastWatchdogAt, now - last < interval / 2 { return }
            state.lastWatchdogAt = now
            send(["WATCHDOG=1"])
        }
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`; call ``ready()`` when the reload is done.
    public func reloading() {
        withState { state in
            state.phase = .reloading
            send(["RELOADING=1", takeStatus("reloading configuration", &state), "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"])
        }
    }

    /// `STOPPING=1` with `STATUS=stopping: N left`; later counts keep reporting what is left.
    public func stopping(left: Int) {
        withState { state in
            state.phase = .stopping
            send(["STOPPING=1", takeStatus(RuntimeCounts.stoppingStatus(left: left), &state)])
        }
    }

    /// `STATUS=fatal: …` and `ERRNO=` (when known), just before a fatal exit.
    public func fatal(_ message: String, errno: Errno? = nil) {
        withState { state in
            state.phase = .failed
            var lines = [takeStatus("fatal: " + message, &state)]
            if let errno { lines.append("ERRNO=\(errno.rawValue)") }
            send(lines)
        }
    }

    // MARK: Internals (all called with the state locked, so messages leave in order)

    private func withState(_ body: (inout State) -> Void) {
        guard transport != nil else { return }
        state.withLock { body(&$0) }
    }

    private func send(_ lines: [String]) {
        guard let transport else { return }
        do { try transport(lines.joined(separator: "\n")) } catch { onError(error) }
    }

    /// Marks `text` as sent now (with another message) and returns its `STATUS=` line.
    private func takeStatus(_ text: String, _ state: inout State) -> String {
        state.lastStatus = text
        state.lastStatusSentAt = .now
        state.pendingStatus = nil
        return "STATUS=" + Self.oneLine(text)
    }

    private func updateStatus(_ text: String, _ state: inout State) {
        if state.pendingStatus == nil, state.lastStatus == text { return }
        if state.pendingStatus == text { return }
        let now = ContinuousClock.now
        if let sentAt = state.lastStatusSentAt, now - sentAt < statusInterval {
            state.pendingStatus = text
            scheduleFlush(at: sentAt + statusInterval, &state)
            return
        }
        send([takeStatus(text, &state)])
    }

    private func scheduleFlush(at deadline: ContinuousClock.Instant, _ state: inout State) {
        guard !state.flushScheduled else { return }
        state.flushScheduled = true
        Task { [self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            self.flushPending()
        }
    }

    private func flushPending() {
        state.withLock { state in
            state.flushScheduled = false
            guard let pending = state.pendingStatus else { return }
            if let sentAt = state.lastStatusSentAt, ContinuousClock.now - sentAt < statusInterval {
                scheduleFlush(at: sentAt + statusInterval, &state)
                return
            }
            send([takeStatus(pending, &state)])
        }
    }

    /// The notify protocol is line-based: a status must not contain newlines.
    static func oneLine(_ text: String) -> String {
        text.contains(where: \.isNewline) ? String(text.map { $0.isNewline ? " " : $0 }) : text
    }

    /// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` expects.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
