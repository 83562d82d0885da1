import Logging
import NIOCore
import Synchronization

/// Rate-limits the warnings a peer can trigger on one connection (issue #11, attack 3).
///
/// At most `burst` lines per `window`; the rest are counted, and when the window in which they were
/// suppressed ends, one line says how many (`rhp: suppressed N peer-triggered log lines …`). The
/// report is scheduled on the connection's event loop, so it arrives even if the flood stops.
final class PeerWarningLimiter: Sendable {
    private struct State {
        var windowStart: NIODeadline = .distantPast
        var logged = 0
        var suppressed = 0
        var reportScheduled = false
    }

    private let burst: Int
    private let window: TimeAmount
    private let state = Mutex(State())

    init(burst: Int, window: Duration) {
        self.burst = max(1, burst)
        self.window = TimeAmount(window)
    }

    /// Logs `message` at warning level unless this window's budget is spent.
    func warning(_ message: @autoclosure () -> Logger.Message, logger: Logger, eventLoop: any EventLoop) {
        let now = NIODeadline.now()
        enum Verdict { case log, suppress, suppressAndSchedule(NIODeadline) }
        let verdict = state.withLock { state -> Verdict in
            if now - state.windowStart >= window, state.suppressed == 0 {
                state.windowStart = now
                state.logged = 0
            }
            if state.logged < burst {
                state.logged += 1
                return .log
            }
            state.suppressed += 1
            if state.reportScheduled { return .suppress }
            state.reportScheduled = true
            return .suppressAndSchedule(state.windowStart + window)
        }
        switch verdict {
        case .log:
            logger.warning(message())
        case .suppress:
            break
        case .suppressAndSchedule(let deadline):
            eventLoop.scheduleTask(deadline: deadline) { self.report(logger: logger, eventLoop: eventLoop) }
        }
    }

    /// Writes the "suppressed N" line for the window that ended and opens the next window.
    private func report(logger: Logger, eventLoop: any EventLoop) {
        let count = state.withLock { state -> Int in
            defer {
                state.suppressed = 0
                state.reportScheduled = false
                state.windowStart = .now()
                state.logged = 1  // the report itself
            }
            return state.suppressed
        }
        guard count > 0 else { return }
        logger.warning("rhp: suppressed \(count) peer-triggered log lines in the last \(window.nanoseconds / 1_000_000_000) s (limit \(burst) per window)")
    }
}
