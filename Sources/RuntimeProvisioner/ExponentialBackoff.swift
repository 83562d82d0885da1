/// Exponential backoff with jitter: cenkalti/backoff's `ExponentialBackOff`, which upstream uses.
///
/// Intervals start at ``initialInterval`` and grow by ``multiplier`` up to ``maxInterval``; each is
/// randomised by ±``randomization``. ``nextDelay(elapsed:)`` returns `nil` ("stop") when the elapsed time
/// plus the next delay would exceed ``maxElapsed``, which is how supervision gives up.
struct ExponentialBackoff: Sendable {
    var initialInterval: Duration = .milliseconds(500)
    var multiplier: Double = 1.5
    var randomization: Double = 0.5
    var maxInterval: Duration
    /// `nil` never gives up.
    var maxElapsed: Duration?
    /// A value in `0..<1` per delay; tests make the jitter deterministic with it.
    var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    private(set) var currentInterval: Duration

    init(
        initialInterval: Duration = .milliseconds(500), maxInterval: Duration, maxElapsed: Duration?,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.initialInterval = initialInterval
        self.maxInterval = maxInterval
        self.maxElapsed = maxElapsed
        self.random = random
        self.currentInterval = initialInterval
    }

    /// The next delay, or `nil` when `elapsed` (since the backoff began) plus that delay exceeds
    /// ``maxElapsed``. The interval grows either way, as upstream's does.
    mutating func nextDelay(elapsed: Duration) -> Duration? {
        let base = currentInterval.seconds
        let delta = randomization * base
        // cenkalti: min + random × (max − min + 1 ns); the nanosecond is below anything that matters.
        let next = Duration.seconds(base - delta + random() * (2 * delta))
        currentInterval = currentInterval.seconds >= maxInterval.seconds / multiplier
            ? maxInterval : currentInterval * multiplier
        if let maxElapsed, elapsed + next > maxElapsed { return nil }
        return next
    }

    mutating func reset() {
        currentInterval = initialInterval
    }
}

/// When supervision may make its next start attempt: upstream's restart ticker, as a pure model.
///
/// Upstream (`go/runtime/host/sandbox`) starts the first attempt at once and creates a
/// `backoff.Ticker`, which ticks once at creation: the second attempt is immediate too. Each later tick
/// comes one backoff delay after the previous tick was taken, i.e. after the previous attempt *started*,
/// so a runtime that ran longer than the delay restarts at once. The ticker stops when the backoff says
/// stop (elapsed since creation + next delay > max elapsed): supervision gives up. Generic over the
/// instant so tests drive it with a clock they control.
struct RestartTicker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    private var backoff: ExponentialBackoff
    private let created: Instant
    /// How many ticks were taken (attempts started).
    private(set) var taken = 0
    /// When the next tick is available; nil once the ticker has stopped.
    private(set) var nextTick: Instant?
    /// The interval the next delay is drawn around (before jitter).
    var currentInterval: Duration { backoff.currentInterval }

    init(backoff: ExponentialBackoff, now: Instant) {
        var backoff = backoff
        backoff.reset()
        self.backoff = backoff
        self.created = now
        self.nextTick = now
    }

    /// Takes the tick for an attempt starting at `now` (at or after ``nextTick``).
    mutating func take(at now: Instant) {
        taken += 1
        // Attempt 1 is upstream's separate first-tick channel; the ticker's own first tick (creation)
        // is taken by attempt 2 and arms the first delay from that moment.
        guard taken >= 2 else { return }
        nextTick = backoff.nextDelay(elapsed: created.duration(to: now)).map { now.advanced(by: $0) }
    }
}

extension Duration {
    /// The duration as fractional seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
