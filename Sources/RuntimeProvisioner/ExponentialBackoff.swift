/// Exponential backoff with jitter, as the seed uses it (cenkalti/backoff defaults).
///
/// Intervals start at ``initialInterval`` and grow by ``multiplier`` up to ``maxInterval``; each is
/// randomised by ±``randomization``. ``nextDelay(elapsed:)`` returns `nil` once ``maxElapsed`` has passed,
/// which is how supervision "gives up".
struct ExponentialBackoff: Sendable {
    var initialInterval: Duration = .milliseconds(500)
    var multiplier: Double = 1.5
    var randomization: Double = 0.5
    var maxInterval: Duration
    /// `nil` never gives up.
    var maxElapsed: Duration?

    private(set) var currentInterval: Duration

    init(initialInterval: Duration = .milliseconds(500), maxInterval: Duration, maxElapsed: Duration?) {
        self.initialInterval = initialInterval
        self.maxInterval = maxInterval
        self.maxElapsed = maxElapsed
        self.currentInterval = initialInterval
    }

    /// The next delay, or `nil` when the elapsed time since the backoff began exceeds ``maxElapsed``.
    mutating func nextDelay(elapsed: Duration) -> Duration? {
        if let maxElapsed, elapsed > maxElapsed { return nil }
        let base = currentInterval
        let next = base * multiplier
        currentInterval = next > maxInterval ? maxInterval : next
        let delta = randomization * base.seconds
        let jittered = base.seconds + Double.random(in: -delta...delta)
        return .seconds(jittered)
    }

    mutating func reset() {
        currentInterval = initialInterval
    }
}

extension Duration {
    /// The duration as fractional seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
