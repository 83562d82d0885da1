import Synchronization

/// A runtime's output budget on the swift-log path (no ``RuntimeOutputSink``): lines per second plus a
/// burst. Over it the pump waits without reading the pipe, so a flooding runtime blocks in `write`
/// instead of costing the host CPU (issue #11). Shared by the runtime's stdout and stderr pumps.
public final class OutputBudget: Sendable {
    public struct Limit: Sendable, Hashable {
        public var linesPerSecond: Double
        public var burst: Int

        public init(linesPerSecond: Double, burst: Int) {
            self.linesPerSecond = max(1, linesPerSecond)
            self.burst = max(1, burst)
        }

        /// 200 lines/s, bursts of 2000 (the journal forwarder's default too).
        public static let `default` = Limit(linesPerSecond: 200, burst: 2000)
    }

    private struct State {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
        var waits = 0
    }

    public let limit: Limit
    private let state: Mutex<State>

    public init(_ limit: Limit) {
        self.limit = limit
        self.state = Mutex(State(tokens: Double(limit.burst), refilledAt: .now))
    }

    /// Takes a token and returns nil, or returns how long to wait (a tenth of a second's budget at once).
    func take() -> Duration? {
        state.withLock { state in
            let now = ContinuousClock.now
            let elapsed = now - state.refilledAt
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(Double(limit.burst), state.tokens + seconds * limit.linesPerSecond)
            state.refilledAt = now
            if state.tokens >= 1 {
                state.tokens -= 1
                return nil
            }
            state.waits += 1
            let batch = min(Double(limit.burst), max(1, limit.linesPerSecond / 10))
            return .seconds((batch - state.tokens) / limit.linesPerSecond)
        }
    }

    /// Pauses counted since the last call.
    func takeWaits() -> Int {
        state.withLock { state in
            defer { state.waits = 0 }
            return state.waits
        }
    }
}
